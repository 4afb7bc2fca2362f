-- ARGV: code, actor_id ('' = administrator), reason (HOST_CLOSED | ADMIN_CLOSED)
-- Everyone receives room:closed and is closed with 4410; every key goes, so
-- every token of the room is dead at once. Returns the seq of room:closed.
local code, actor, reason = ARGV[1], ARGV[2], ARGV[3]
local room = load_room(code)
if room.err then return room end
local denied = check_host(code, room, actor)
if denied then return denied end
local seq = publish(code, room, 'room:closed', {reason = reason}, {close = {code = 4410}})
delete_room(code)
return seq
