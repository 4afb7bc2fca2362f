-- ARGV: code, target_id, actor_id ('' = administrator), mode ('leave' | 'kick'), ttl_ms, now,
--       live instances (JSON list of the instance ids whose heartbeat is fresh; '' = all live)
-- Leave or kick, with host hand-over to the longest-standing remaining member
-- connected through a live instance (else the longest-standing one). The room is
-- deleted when nobody remains. Returns {new_host_id or '', room_deleted 0|1, seq}.
local code, target, actor, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, now, live = tonumber(ARGV[5]), tonumber(ARGV[6]), live_set(ARGV[7])
local room = load_room()
if room.err then return room end
local kick = mode == 'kick'
if kick then
  local denied = check_host(room, actor)
  if denied then return denied end
  if target == actor then return redis.error_reply('CANNOT_KICK_SELF') end
end
local leaving = load_user(target)
if not leaving then
  -- A viewer of the room's audience (kick only): it leaves the audience (its token dies: the
  -- connect and rejoin check it), audience:kicked to it alone, its sockets closed with 4403.
  if kick and room.audience and redis.call('HDEL', AUDIENCE, target) == 1 then
    -- Its vote in the open poll goes with it (one vote per viewer of the audience; a closed
    -- poll's final tally stands). The next tally or the close reports the corrected counts.
    local poll = load_poll()
    local choice = poll and poll.open and redis.call('HGET', VOTES, target)
    if choice then
      redis.call('HDEL', VOTES, target)
      redis.call('HINCRBY', COUNTS, choice, -1)
      redis.call('HSET', POLL, 'dirty', '1')
    end
    publish(room, 'audience:kicked', {audienceId = target},
            {aud = 2, to = {target}, close = {code = 4403, userId = target}})
    touch(room, ttl, now)
    return reply({'', 0, room.seq})
  end
  return redis.error_reply('MEMBER_NOT_FOUND')
end
unindex_socket(code, leaving)
redis.call('HDEL', USERS, target)
local meta = {skip = target, close = {userId = target, code = kick and 4403 or 1000}}
if kick then
  meta.direct = {userId = target, event = 'user:kicked',
                 data = {userId = target, by = actor == '' and 'ADMIN' or 'HOST'}}
end
publish(room, 'user:left', {userId = target, reason = kick and 'KICKED' or 'LEFT'}, meta)
if redis.call('HLEN', USERS) == 0 then
  delete_room(code, room)
  return reply({'', 1, room.seq})
end
local new_host = ''
if room.hostId == target then
  local heir = next_host(live)
  room.hostId = heir.id
  if room.hostAwaySince then hint(room, 'hosted', room.hostAwaySince) end
  room.hostAwaySince = nil
  new_host = heir.id
  -- The heir now reads every state entry: it re-reads a snapshot.
  publish(room, 'room:host_updated', {hostId = heir.id, reason = kick and 'HOST_KICKED' or 'HOST_LEFT'},
          {resync = {heir.id}})
  track_host(room, now)
end
touch(room, ttl, now)
return reply({new_host, 0, room.seq})
