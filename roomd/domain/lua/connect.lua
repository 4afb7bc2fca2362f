-- ARGV: code, user_id, socket_id, ttl_ms, now, instance ('' = none)
-- Marks the user connected on socket_id held by instance, and returns the
-- room:state snapshot as JSON {room, users}; room.seq is the sequence number of
-- the last event it reflects. An older socket of the same user is closed with 4409
-- by whichever instance holds it. The socket is added to the instance's socket
-- index (so a live instance can disconnect it if this one dies) and the older
-- socket removed from its own; the instance's heartbeat is refreshed (never moved back).
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local now, instance = tonumber(ARGV[5]), ARGV[6] or ''
local room = load_room(code)
if room.err then return room end
local ttl = room_ttl(room, tonumber(ARGV[4]))
if not is_member(code, user_id) then return redis.error_reply('MEMBER_NOT_FOUND') end
local user = load_user(user_id)
if not user then return redis.error_reply('MEMBER_NOT_FOUND') end
unindex_socket(code, user)
user.isConnected = true
user.socketId = socket_id
user.instance = instance
if instance ~= '' then
  redis.call('SADD', instance_sockets_key(instance), socket_entry(code, user_id, socket_id))
  redis.call('ZADD', INSTANCES, 'GT', redis_time_ms(), instance)
end
redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
publish(code, room, 'user:connected', {user = public_user(user, room)},
        {skip = user_id, close = {userId = user_id, code = 4409, exceptSocket = socket_id}})
touch(code, room, ttl, now)
return snapshot_json(code, room)
