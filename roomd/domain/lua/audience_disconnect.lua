-- ARGV: code, instance, now, online (the viewer sockets of this room the instance still holds)
-- A viewer's socket closed: ONLINE[instance] becomes online (the field goes at 0; O(1), no event).
-- Returns when audience_count.lua should run (ms), 0 if the room is gone.
local instance, now, online = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('GET', ROOM)
if not raw then return reply(0) end
set_online(instance, online)
return reply(audience_count_due(cjson.decode(raw), now))
