-- ARGV: code, user_id, socket_id
-- Read-only: the room:state snapshot for a socket that may have missed events
-- (pub/sub reconnect, or its view of the state changed wholesale: a new host).
-- Returns {snapshot JSON {room, users}, state JSON of the entries this member may read, poll JSON
-- (rooms with an audience only, as in connect.lua)}.
-- Fails with MEMBER_NOT_FOUND if the user left or was kicked meanwhile, and with
-- REPLACED if another socket took over the user.
local user_id, socket_id = ARGV[2], ARGV[3]
local room = load_room()
if room.err then return room end
local user = load_user(user_id)
if not user then return redis.error_reply('MEMBER_NOT_FOUND') end
if user.socketId ~= socket_id then return redis.error_reply('REPLACED') end
return reply({snapshot_json(room), state_json(room, user_id),
              room.audience and poll_json(room, nil, room.hostId == user_id) or nil})
