-- ARGV: code, user_id, display_name, ttl_ms, now
local code, user_id, name = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[5])
local room = load_room(code)
if room.err then return room end
local ttl = room_ttl(room, tonumber(ARGV[4]))
if room.isLocked then return redis.error_reply('ROOM_LOCKED') end
if redis.call('SCARD', users_key(code)) >= room.maxUsers then return redis.error_reply('ROOM_FULL') end
room.joinSeq = room.joinSeq + 1
local user = {id = user_id, displayName = name, roomCode = code, isConnected = false,
              socketId = '', joinedAt = now, joinSeq = room.joinSeq}
redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
redis.call('SADD', users_key(code), user_id)
publish(code, room, 'user:joined', {user = public_user(user, room)}, {skip = user_id})
touch(code, room, ttl, now)
return 1
