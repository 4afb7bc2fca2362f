-- ARGV: code, actor_id ('' = administrator), new_host_id, ttl_ms, now
-- Returns the seq of room:host_updated. Both the new and the old host re-read a
-- snapshot: what each may read of the shared state changed.
local code, actor, new_host = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
if new_host == room.hostId then return redis.error_reply('ALREADY_HOST') end
if not is_member(new_host) then return redis.error_reply('MEMBER_NOT_FOUND') end
local old_host = room.hostId
room.hostId = new_host
if room.hostAwaySince then hint(room, 'hosted', room.hostAwaySince) end
room.hostAwaySince = nil
publish(room, 'room:host_updated', {hostId = new_host, reason = 'TRANSFERRED'}, {resync = {new_host, old_host}})
track_host(room, now)
touch(room, ttl, now)
return reply(room.seq)
