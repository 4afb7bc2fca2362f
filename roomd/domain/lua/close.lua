-- ARGV: code, actor_id ('' = administrator), reason (HOST_CLOSED | ADMIN_CLOSED),
--       idle_since ('' = close anyway; else only if nobody is connected and the room has not
--       changed since then: roomctl rooms close --idle-for, checked and done in one step)
-- Everyone receives room:closed and is closed with 4410; every key goes, so
-- every token of the room is dead at once. Returns the seq of room:closed, or 0
-- when idle_since was given and the room is not idle.
local code, actor, reason, idle_since = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4] or '')
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
if idle_since then
  if tonumber(room.updatedAt or room.createdAt) > idle_since then return reply(0) end
  for _, u in ipairs(all_users()) do
    if u.isConnected then return reply(0) end
  end
end
local seq = publish(room, 'room:closed', {reason = reason}, {close = {code = 4410}})
delete_room(code, room)
return reply(seq)
