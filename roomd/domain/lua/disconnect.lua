-- ARGV: code, user_id, socket_id, ttl_ms, now
-- Marks the user disconnected, but only if socket_id is still their current
-- socket: a socket replaced by a newer one (4409) must not flip presence.
-- The caller takes the socket out of its instance's index after the script, whatever
-- the outcome. Returns 1 if the user was marked disconnected, else 0.
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('GET', ROOM)
if not raw then return reply(0) end
local user = load_user(user_id)
if not user or user.socketId ~= socket_id then return reply(0) end
mark_disconnected(code, cjson.decode(raw), user, ttl, now)
return reply(1)
