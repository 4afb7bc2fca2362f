-- ARGV: code, actor_id ('' = administrator), poll id, ttl_ms, now
-- Host only. Closes the open poll (POLL_NOT_OPEN if poll id is not it) and publishes the exact
-- final tally, poll:closed {pollId, counts, votes}: to everyone (aud 1) when the tallies are
-- public, else to the host only while members and viewers get poll:closed {pollId} (one event:
-- the host's copy is its `direct`). Votes and counts stay until the next poll:open (roomctl
-- shows the last poll). Returns the seq of poll:closed.
local code, actor, poll_id = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
local poll = load_poll()
if not poll or not poll.open or poll.id ~= poll_id then return redis.error_reply('POLL_NOT_OPEN') end
redis.call('HSET', POLL, 'open', '0', 'dirty', '0')
local tally = poll_tally_json(poll)
local seq
if poll.public then
  seq = publish_raw(room, 'poll:closed', tally, {aud = 1})
else
  seq = publish_raw(room, 'poll:closed', '{"pollId":' .. cjson.encode(poll.id) .. '}',
                    {aud = 1, direct = {userId = room.hostId, event = 'poll:closed', data = cjson.decode(tally)}})
end
touch(room, ttl, now)
return reply(seq)
