-- ARGV: code, target_id, actor_id ('' = administrator), mode ('leave' | 'kick'), ttl_ms, now,
--       instance_timeout_ms (optional: a heartbeat older than this marks an instance dead)
-- Leave or kick, with host hand-over to the longest-standing remaining member
-- connected through a live instance (else the longest-standing one). The room is
-- deleted when nobody remains. Returns {new_host_id or '', room_deleted 0|1, seq}.
local code, target, actor, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, now, timeout = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local room = load_room(code)
if room.err then return room end
local kick = mode == 'kick'
if kick then
  local denied = check_host(code, room, actor)
  if denied then return denied end
  if target == actor then return redis.error_reply('CANNOT_KICK_SELF') end
end
if not is_member(code, target) then return redis.error_reply('MEMBER_NOT_FOUND') end
local leaving = load_user(target)
if leaving then unindex_socket(code, leaving) end
redis.call('SREM', users_key(code), target)
redis.call('DEL', user_key(target))
local meta = {skip = target, close = {userId = target, code = kick and 4403 or 1000}}
if kick then
  meta.direct = {userId = target, event = 'user:kicked',
                 data = {userId = target, by = actor == '' and 'ADMIN' or 'HOST'}}
end
publish(code, room, 'user:left', {userId = target, reason = kick and 'KICKED' or 'LEFT'}, meta)
if redis.call('SCARD', users_key(code)) == 0 then
  delete_room(code)
  return {'', 1, room.seq}
end
local new_host = ''
if room.hostId == target then
  local cutoff = nil
  if timeout then cutoff = redis_time_ms() - timeout end
  local heir = next_host(code, cutoff)
  room.hostId = heir.id
  room.hostAwaySince = nil
  new_host = heir.id
  -- The heir now reads every state entry: it re-reads a snapshot.
  publish(code, room, 'room:host_updated', {hostId = heir.id, reason = kick and 'HOST_KICKED' or 'HOST_LEFT'},
          {resync = {heir.id}})
  track_host(code, room, now)
end
touch(code, room, ttl, now)
return {new_host, 0, room.seq}
