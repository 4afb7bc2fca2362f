-- ARGV: code, user_id, socket_id, ttl_ms, now
-- Marks the user disconnected, but only if socket_id is still their current
-- socket: a socket replaced by a newer one (4409) must not flip presence.
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('GET', room_key(code))
if not raw or not is_member(code, user_id) then return 0 end
local room = cjson.decode(raw)
local user = load_user(user_id)
if not user or user.socketId ~= socket_id then return 0 end
user.isConnected = false
user.socketId = ''
redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
-- skip: a member never hears of its own disconnection (a replay would show it offline).
publish(code, room, 'user:disconnected', {user = public_user(user, room)}, {skip = user_id})
if room.hostId == user_id then track_host(code, room, now) end
touch(code, room, ttl, now)
return 1
