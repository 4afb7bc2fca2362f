-- ARGV: code, user_id, display_name, ttl_ms, now
local code, user_id, name = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
local ttl = room_ttl(room, tonumber(ARGV[4]))
if room.isLocked then return redis.error_reply('ROOM_LOCKED') end
if redis.call('HLEN', USERS) >= room.maxUsers then return redis.error_reply('ROOM_FULL') end
room.joinSeq = room.joinSeq + 1
local user = {id = user_id, displayName = name, roomCode = code, isConnected = false,
              socketId = '', joinedAt = now, joinSeq = room.joinSeq}
save_user(user)
publish(room, 'user:joined', {user = public_user(user, room)}, {skip = user_id})
touch(room, ttl, now)
return reply(1)
