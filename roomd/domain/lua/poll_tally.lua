-- ARGV: code, interval_ms, ttl_ms, now
-- Run by a roomd instance when a vote said a tally is due (its nudge). Publishes poll:tally only if
-- the open poll has votes since the last tally and that tally is interval_ms old; if it has votes
-- but the tally is too recent (another instance's nudge or a vote published it meanwhile),
-- returns when the next one is due. Returns {seq, next due (ms) or 0}; {0, 0} if the room is gone.
local interval, ttl, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('GET', ROOM)
if not raw then return reply({0, 0}) end
local room = cjson.decode(raw)
local poll = load_poll()
if not poll or not poll.open or not poll.dirty then return reply({room.seq or 0, 0}) end
if now - poll.tallyAt < interval then return reply({room.seq or 0, poll.tallyAt + interval}) end
local seq = publish_tally(room, poll, now)
touch(room, ttl, now)
return reply({seq, 0})
