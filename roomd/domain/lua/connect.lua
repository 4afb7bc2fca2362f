-- ARGV: code, user_id, socket_id, ttl_ms, now, instance ('' = none), since ('' = none)
-- Marks the user connected on socket_id held by instance. Returns what the socket sends first:
--   {'state', snapshot JSON {room, users}, state JSON, poll JSON (rooms with an audience only: the
--    open poll, with its counts for the host)}: room.seq is the last event it reflects;
--   {'resumed', seq, incarnation, message...}: with since, when every event after it is still
--   in the room's history: those bus messages (seq since+1 .. seq-1, the caller filters them
--   for this member), seq being this connection's own user:connected.
-- An older socket of the same user is closed with 4409 by whichever instance holds it; its
-- socket-index entry goes back as an unindex hint (the caller added this socket's entry
-- to its own index before the script, so an instance that dies right after is reaped).
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local now, instance, since = tonumber(ARGV[5]), ARGV[6] or '', tonumber(ARGV[7] or '')
local room = load_room()
if room.err then return room end
local ttl = room_ttl(room, tonumber(ARGV[4]))
local user = load_user(user_id)
if not user then return redis.error_reply('MEMBER_NOT_FOUND') end
local missed = nil
if since then
  local last = room.seq or 0
  local kept = redis.call('LLEN', HISTORY)
  local first = last - kept + 1  -- the history holds seq first..last, contiguous
  if since <= last and since >= first - 1 then
    missed = redis.call('LRANGE', HISTORY, since - first + 1, -1)
  end
end
if user.socketId ~= socket_id then unindex_socket(code, user) end
user.isConnected = true
user.socketId = socket_id
user.instance = instance
save_user(user)
publish(room, 'user:connected', {user = public_user(user, room)},
        {skip = user_id, close = {userId = user_id, code = 4409, exceptSocket = socket_id}})
track_host(room, now)
touch(room, ttl, now)
if missed then
  table.insert(missed, 1, room.incarnation or '')
  table.insert(missed, 1, room.seq)
  table.insert(missed, 1, 'resumed')
  return reply(missed)
end
return reply({'state', snapshot_json(room), state_json(room, user_id),
              room.audience and poll_json(room, nil, room.hostId == user_id) or nil})
