-- ARGV: code, user_id, socket_id, ttl_ms, now, instance ('' = none)
-- Marks the user disconnected, but only if socket_id is still their current
-- socket: a socket replaced by a newer one (4409) must not flip presence.
-- Whatever the outcome, the socket leaves instance's socket index.
-- Returns 1 if the user was marked disconnected, else 0.
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now, instance = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] or ''
if instance ~= '' then
  redis.call('SREM', instance_sockets_key(instance), socket_entry(code, user_id, socket_id))
end
local raw = redis.call('GET', room_key(code))
if not raw or not is_member(code, user_id) then return 0 end
local room = cjson.decode(raw)
local user = load_user(user_id)
if not user or user.socketId ~= socket_id then return 0 end
mark_disconnected(code, room, user, ttl, now)
return 1
