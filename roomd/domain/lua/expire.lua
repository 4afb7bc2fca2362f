-- ARGV: code, incarnation (of the rooms:expiry entry), now
-- The expiry sweep's re-check of a room whose rooms:expiry entry is due. Returns
--   {'alive', expiresAt}: the room of that incarnation lives (the caller re-arms its entry to
--     its real deadline); a pending host hand-over is re-asserted as a hostless hint;
--   {'expired', createdAt}: Redis expired the room; this call deleted its claim and every
--     key left and told its members room:closed {EXPIRED} (exactly once: only the call that
--     finds the claim does);
--   {'gone', 0}: no room of that incarnation, no claim of it (closed, told already, or the
--     code belongs to a newer room): the entry is stale.
-- Until this has run, create.lua does not hand the code out again (the claim holds it).
local code, incarnation, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local raw = redis.call('GET', CLAIM)
local claim = raw and cjson.decode(raw) or nil
if not claim or (claim.incarnation or '') ~= incarnation then return reply({'gone', 0}) end
local pttl = redis.call('PTTL', ROOM)
if pttl > 0 or pttl == -1 then
  local room = cjson.decode(redis.call('GET', ROOM))
  if room.hostMigration == 'disconnect' and room.hostAwaySince then hint(room, 'hostless', room.hostAwaySince) end
  local deadline = now + pttl
  if pttl == -1 then deadline = tonumber(room.expiresAt) or now end
  return reply({'alive', deadline})
end
delete_room(code, nil)
-- No seq: the room is gone, this event applies to every socket of the room whatever
-- it has seen; inc keeps it to that room's sockets.
local meta = {close = {code = 4410}}
if claim.incarnation then meta.inc = claim.incarnation end
if claim.audience then meta.aud = 1 end  -- the room's viewers are closed too
redis.call(PUBLISH_CMD, CHANNEL, cjson.encode(meta) .. '\n' ..
           cjson.encode({event = 'room:closed', data = {reason = 'EXPIRED'}}))
return reply({'expired', claim.createdAt or 0})
