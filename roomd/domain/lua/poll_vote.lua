-- ARGV: code, audience id, poll id, choice, interval_ms, ttl_ms, now
-- A viewer's vote, changeable while the poll is open: O(1) whatever the audience (HGET/HSET on
-- VOTES, HINCRBY on COUNTS). Errors: MEMBER_NOT_FOUND (not an admitted viewer), NOT_ALLOWED (a
-- member: members do not vote), POLL_NOT_OPEN (poll id is not the open poll), INVALID_MESSAGE
-- (not one of its choices); nothing changes. A changed vote publishes poll:tally at once if the
-- last one is interval_ms old, else marks the poll dirty and returns when a tally is due: the
-- caller's instance then runs poll_tally.lua (a nudge; the truth is POLL's tallyAt and dirty).
-- Returns {seq (the room's, after the tally if one was published), tally due at (ms) or 0}.
local code, voter, poll_id, choice = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local interval, ttl, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local room = load_room()
if room.err then return room end
if redis.call('HEXISTS', AUDIENCE, voter) == 0 then
  if is_member(voter) then return redis.error_reply('NOT_ALLOWED') end
  return redis.error_reply('MEMBER_NOT_FOUND')
end
local poll = load_poll()
if not poll or not poll.open or poll.id ~= poll_id then return redis.error_reply('POLL_NOT_OPEN') end
if redis.call('HEXISTS', COUNTS, choice) == 0 then return redis.error_reply('INVALID_MESSAGE') end
local old = redis.call('HGET', VOTES, voter)
if old == choice then return reply({room.seq or 0, 0}) end
redis.call('HSET', VOTES, voter, choice)
if old then
  redis.call('HINCRBY', COUNTS, old, -1)
elseif redis.call('PTTL', VOTES) == -1 then  -- the poll's first vote created VOTES
  redis.call('PEXPIRE', VOTES, math.max(redis.call('PTTL', ROOM), 1))
end
redis.call('HINCRBY', COUNTS, choice, 1)
if now - poll.tallyAt >= interval then
  local seq = publish_tally(room, poll, now)
  touch(room, ttl, now)
  return reply({seq, 0})
end
if not poll.dirty then redis.call('HSET', POLL, 'dirty', '1') end
return reply({room.seq or 0, poll.tallyAt + interval})
