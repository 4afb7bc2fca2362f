-- ARGV: code, user_id, socket_id, instance, ttl_ms, now, last_seen
-- One entry of a dead instance's socket index (the caller judged the instance dead by
-- its heartbeat, and takes the entry out of the index after this script): the user is
-- marked disconnected, with user:disconnected exactly as when a socket closes, only if
-- the room still records that socket on that instance. Concurrent reapers of one instance
-- therefore tell each member's room exactly once. last_seen: the dead instance's last
-- heartbeat (its sockets were last known alive then): a host's grace counts from there.
-- Returns 1 if the member was marked disconnected, else 0.
local code, user_id, socket_id, instance = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, now, last_seen = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local raw = redis.call('GET', ROOM)
if not raw then return reply(0) end
local user = load_user(user_id)
if not user or user.socketId ~= socket_id then return reply(0) end
if user.instance and user.instance ~= '' and user.instance ~= instance then return reply(0) end
mark_disconnected(code, cjson.decode(raw), user, ttl, now, math.min(now, last_seen or now))
return reply(1)
