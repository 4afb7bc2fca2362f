-- ARGV: code, now
-- Called for a room whose rooms:expiry deadline has passed. If Redis has
-- expired the room, clean up and tell its members (exactly once: ZREM decides
-- which instance does it). If the room was refreshed meanwhile, re-arm it.
-- Until this has run, create.lua does not hand the code out again.
local code, now = ARGV[1], tonumber(ARGV[2])
local pttl = redis.call('PTTL', room_key(code))
if pttl > 0 then
  redis.call('ZADD', 'rooms:expiry', now + pttl, code)
  return 0
end
if redis.call('ZREM', 'rooms:expiry', code) == 0 then return 0 end
local incarnation = redis.call('HGET', INCARNATIONS, code)
delete_room(code)
-- No seq: the room is gone, this event applies to every socket of the room whatever
-- it has seen; inc keeps it to that room's sockets.
local meta = {close = {code = 4410}}
if incarnation then meta.inc = incarnation end
redis.call('PUBLISH', channel(code), cjson.encode(meta) .. '\n' ..
           cjson.encode({event = 'room:closed', data = {reason = 'EXPIRED'}}))
return 1
