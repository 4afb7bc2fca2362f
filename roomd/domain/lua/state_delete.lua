-- ARGV: code, actor_id ('' = administrator), key, ifVersion or '', ttl_ms, now
-- Host (or administrator) only. Deletes a shared state entry and tells its readers
-- (state:deleted, version = its seq; the audience's viewers too for an entry visible to
-- 'audience'). A missing entry changes nothing.
-- Returns the room's seq after the change.
local code, actor, key, if_version = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, now = tonumber(ARGV[5]), tonumber(ARGV[6])
local room = load_room()
if room.err then return room end
if actor ~= '' then
  if not is_member(actor) then return redis.error_reply('MEMBER_NOT_FOUND') end
  if room.hostId ~= actor then return redis.error_reply('NOT_ALLOWED') end
end
local raw = redis.call('HGET', STATE, key)
local entry = raw and cjson.decode(raw) or nil
local current = entry and entry.version or 0
if if_version ~= '' and tonumber(if_version) ~= current then
  return redis.error_reply('VERSION_CONFLICT {"version":' .. current .. '}')
end
if not entry then return reply(room.seq or 0) end
redis.call('HDEL', STATE, key)
redis.call('HDEL', VALUES, key)
room.stateBytes = math.max(0, (room.stateBytes or 0) - (entry.size or 0))
publish(room, 'state:deleted', {key = key, version = room.seq + 1, by = actor == '' and 'ADMIN' or actor},
        {to = readers(room, entry.visibleTo), aud = entry.visibleTo == 'audience' and 1 or nil})
touch(room, ttl, now)
return reply(room.seq)
