-- ARGV: code, audience ids (JSON list, at most a few hundred)
-- Read-only: the viewer room:state of many viewer sockets of the room at once. A pub/sub
-- reconnect makes every local viewer of the room re-read its room:state; their snapshots
-- differ only in `you` and the poll's `vote`, so one read serves a batch of them instead of one
-- script each (10,000 viewers: 20 reads, not 10,000). Returns {snapshot JSON {room, users},
-- state JSON (the entries visible to 'audience'), poll JSON (the open poll, vote null, or
-- null), each viewer's record or false (no longer admitted: kicked), each viewer's vote or false}.
local ids = cjson.decode(ARGV[2])
local room = load_room()
if room.err then return room end
local viewers, votes = {}, {}
if #ids > 0 then
  viewers = redis.call('HMGET', AUDIENCE, unpack(ids))
  votes = redis.call('HMGET', VOTES, unpack(ids))
end
return reply({snapshot_json(room), state_json(room, '', true), poll_json(room, nil, false), viewers, votes})
