-- ARGV: code, audience_id, instance, now, since ('' = none), online (the viewer sockets of this
--       room the instance holds, this one included; '' = only read a snapshot, for a live viewer
--       socket that may have missed events)
-- A viewer's socket. The viewer must still be admitted (a kick removes it: MEMBER_NOT_FOUND);
-- ONLINE[instance] becomes online (O(1): no event, no presence record: 10,000 viewers must not
-- cost their room 10,000 user:connected). The instance's own count, not an increment: a retried
-- or reordered call, or a field dropped while the instance looked dead, is repaired by the next
-- one. Returns what the socket sends first:
--   {'state', snapshot JSON {room, users}, state JSON (entries visible to 'audience'),
--    poll JSON (the open poll with this viewer's vote, or null), you JSON, due};
--   {'resumed', seq, incarnation, due, message...}: with since, when every event after it is
--    still in the room's history (the caller filters them by the viewer rules);
-- due: when audience_count.lua should run (ms), 0 without count.
local id, instance, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local since, online = tonumber(ARGV[5] or ''), tonumber(ARGV[6] or '')
local room = load_room()
if room.err then return room end
local raw = room.audience and redis.call('HGET', AUDIENCE, id)
if not raw then return redis.error_reply('MEMBER_NOT_FOUND') end
local viewer = cjson.decode(raw)
local due = 0
if online then
  set_online(instance, online)
  due = audience_count_due(room, now)
end
if since then
  local last = room.seq or 0
  local kept = redis.call('LLEN', HISTORY)
  local first = last - kept + 1  -- the history holds seq first..last, contiguous
  if since <= last and since >= first - 1 then
    local missed = redis.call('LRANGE', HISTORY, since - first + 1, -1)
    table.insert(missed, 1, due)
    table.insert(missed, 1, room.incarnation or '')
    table.insert(missed, 1, last)
    table.insert(missed, 1, 'resumed')
    return reply(missed)
  end
end
return reply({'state', snapshot_json(room), state_json(room, id, true), poll_json(room, id, false),
              cjson.encode(viewer_you(viewer)), due})
