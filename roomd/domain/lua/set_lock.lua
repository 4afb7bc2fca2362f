-- ARGV: code, actor_id ('' = administrator), wanted ('toggle' | 'lock' | 'unlock'), ttl_ms, now
-- Returns {1 if the room is now locked else 0, seq}. Broadcasts only on a change.
local code, actor, wanted = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
local locked = not room.isLocked
if wanted == 'lock' then locked = true elseif wanted == 'unlock' then locked = false end
if locked ~= room.isLocked then
  room.isLocked = locked
  publish(room, 'room:lock_toggled', {isLocked = locked})
  touch(room, ttl, now)
end
return reply({locked and 1 or 0, room.seq or 0})
