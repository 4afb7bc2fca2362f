-- ARGV: code, instance, now
-- A viewer's socket closed: ONLINE[instance] goes down by one (never below 0; O(1), no event).
-- Returns when audience_count.lua should run (ms), 0 if the room is gone.
local instance, now = ARGV[2], tonumber(ARGV[3])
local raw = redis.call('GET', ROOM)
if not raw then return reply(0) end
local online = tonumber(redis.call('HGET', ONLINE, instance) or '0')
if online > 1 then
  redis.call('HINCRBY', ONLINE, instance, -1)
elseif online == 1 then
  redis.call('HDEL', ONLINE, instance)
end
return reply(audience_count_due(cjson.decode(raw), now))
