-- ARGV: code, now
-- The expiry sweep's re-check of a room whose rooms:expiry entry is due. Returns
--   {'alive', pttl}: the room lives (the caller re-arms its entry to now + pttl; an
--     absent TTL gives -1); a pending host hand-over is re-asserted as a hostless hint;
--   {'expired', createdAt}: Redis expired the room; this call deleted its claim and every
--     key left and told its members room:closed {EXPIRED} (exactly once: only the call that
--     finds the claim does);
--   {'gone', 0}: no room, no claim (closed, or told already): the entry is stale.
-- Until this has run, create.lua does not hand the code out again (the claim holds it).
local code, now = ARGV[1], tonumber(ARGV[2])
local pttl = redis.call('PTTL', ROOM)
if pttl > 0 or pttl == -1 then
  local room = cjson.decode(redis.call('GET', ROOM))
  if room.hostMigration == 'disconnect' and room.hostAwaySince then HINTS.hostless = room.hostAwaySince end
  return reply({'alive', pttl})
end
local raw = redis.call('GET', CLAIM)
if not raw then return reply({'gone', 0}) end
local claim = cjson.decode(raw)
delete_room(code, nil)
-- No seq: the room is gone, this event applies to every socket of the room whatever
-- it has seen; inc keeps it to that room's sockets.
local meta = {close = {code = 4410}}
if claim.incarnation then meta.inc = claim.incarnation end
redis.call(PUBLISH_CMD, CHANNEL, cjson.encode(meta) .. '\n' ..
           cjson.encode({event = 'room:closed', data = {reason = 'EXPIRED'}}))
return reply({'expired', claim.createdAt or 0})
