-- ARGV: code, user_id, socket_id, ttl_ms, now
-- Marks the user connected on socket_id and returns the room:state snapshot as
-- JSON {room, users}; room.seq is the sequence number of the last event it reflects.
-- An older socket of the same user is closed with 4409 by whichever instance holds it.
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room(code)
if room.err then return room end
if not is_member(code, user_id) then return redis.error_reply('MEMBER_NOT_FOUND') end
local user = load_user(user_id)
if not user then return redis.error_reply('MEMBER_NOT_FOUND') end
user.isConnected = true
user.socketId = socket_id
redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
publish(code, room, 'user:connected', {user = public_user(user, room)},
        {skip = user_id, close = {userId = user_id, code = 4409, exceptSocket = socket_id}})
touch(code, room, ttl, now)
return snapshot_json(code, room)
