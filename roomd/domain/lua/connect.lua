-- ARGV: code, user_id, socket_id, ttl_ms, now, since ('' = none)
-- Marks the user connected on socket_id. Returns what the socket sends first:
--   {'state', snapshot JSON {room, users}, state JSON}: room.seq is the last event it reflects;
--   {'resumed', seq, message...}: with since, when every event after it is still in the
--   room's history: those bus messages (seq since+1 .. seq-1, the caller filters them for
--   this member), seq being this connection's own user:connected.
-- An older socket of the same user is closed with 4409 by whichever instance holds it.
local code, user_id, socket_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now, since = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local room = load_room(code)
if room.err then return room end
if not is_member(code, user_id) then return redis.error_reply('MEMBER_NOT_FOUND') end
local user = load_user(user_id)
if not user then return redis.error_reply('MEMBER_NOT_FOUND') end
local missed = nil
if since then
  local last = room.seq or 0
  local kept = redis.call('LLEN', history_key(code))
  local first = last - kept + 1  -- history holds seq first..last, contiguous
  if since <= last and since >= first - 1 then
    missed = redis.call('LRANGE', history_key(code), since - first + 1, -1)
  end
end
user.isConnected = true
user.socketId = socket_id
redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
publish(code, room, 'user:connected', {user = public_user(user, room)},
        {skip = user_id, close = {userId = user_id, code = 4409, exceptSocket = socket_id}})
track_host(code, room, now)
touch(code, room, ttl, now)
if missed then
  table.insert(missed, 1, room.seq)
  table.insert(missed, 1, 'resumed')
  return missed
end
return {'state', snapshot_json(code, room), state_json(code, room, user_id)}
