-- ARGV: code, live instances (JSON list of ids whose heartbeat is fresh; '' = every one counts), now,
--       instance, online (its viewer sockets of this room, re-asserted first; '' = none to assert)
-- The audience's size: the sum of ONLINE over live instances (a dead instance's field is
-- dropped here: its viewers are gone, and reconnect elsewhere). Run by a roomd instance's timer
-- when a connect or disconnect said a count is due (a nudge: the truth is here). If the size
-- changed and the last audience:count is at least AUDIENCE_COUNT_MS old, publishes
-- audience:count {count} to the host (no aud: members' event, the host only) and records it
-- in the room (audienceCount: GET /rooms/:code; audienceCountAt); the room's TTL and updatedAt
-- stay (viewers do not keep a room alive). Returns {count, due}: due = when to run again (ms)
-- if a change is waiting for the interval, else 0.
local live, now = live_set(ARGV[2]), tonumber(ARGV[3])
local instance, online = ARGV[4] or '', tonumber(ARGV[5] or '')
local raw = redis.call('GET', ROOM)
if not raw then return reply({0, 0}) end
local room = cjson.decode(raw)
if not room.audience then return reply({0, 0}) end
if online then set_online(instance, online) end
local flat = redis.call('HGETALL', ONLINE)
local count, dead = 0, {}
for i = 1, #flat, 2 do
  if instance_alive(live, flat[i]) then
    count = count + math.max(0, tonumber(flat[i + 1]) or 0)
  else
    table.insert(dead, flat[i])
  end
end
if #dead > 0 then redis.call('HDEL', ONLINE, unpack(dead)) end
if count == (tonumber(room.audienceCount) or 0) then return reply({count, 0}) end
local due = audience_count_due(room, now)
if due > now then return reply({count, due}) end
room.audienceCount = count
room.audienceCountAt = now
publish(room, 'audience:count', {count = count}, {to = {room.hostId}})
redis.call('SET', ROOM, cjson.encode(room), 'KEEPTTL')
return reply({count, 0})
