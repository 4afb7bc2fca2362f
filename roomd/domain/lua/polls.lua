-- Audience polls: helpers shared by the room scripts (prepended after prelude.lua, which names
-- POLL, VOTES and COUNTS). Polls exist in rooms created with an audience only.
--   POLL   HASH of the current (or last) poll: id, choices (JSON list, verbatim as opened), prompt,
--          public ('1'/'0'), open ('1'/'0'), tallyAt (ms of the last poll:tally, '0' = none yet),
--          dirty ('1' = votes since that tally)
--   VOTES  HASH audienceId -> the choice it voted for     COUNTS HASH choice -> votes for it
-- COUNTS is kept by every vote (HINCRBY), so a tally is one HGETALL of at most 16 fields plus an
-- HLEN: no script ever walks the votes.

local function load_poll()
  local f = redis.call('HMGET', POLL, 'id', 'choices', 'prompt', 'public', 'open', 'tallyAt', 'dirty')
  if not f[1] then return nil end
  return {id = f[1], choices = f[2], prompt = f[3] or '', public = f[4] == '1', open = f[5] == '1',
          tallyAt = tonumber(f[6]) or 0, dirty = f[7] == '1'}
end

-- {"choice":n,...} in the order of the poll's choices (a choice nobody voted for counts 0).
local function poll_counts_json(poll)
  local flat = redis.call('HGETALL', COUNTS)
  local by_choice = {}
  for i = 1, #flat, 2 do by_choice[flat[i]] = flat[i + 1] end
  local parts = {}
  for _, choice in ipairs(cjson.decode(poll.choices)) do
    table.insert(parts, cjson.encode(choice) .. ':' .. (by_choice[choice] or '0'))
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- {"pollId", "counts", "votes"}: the exact tally now.
local function poll_tally_json(poll)
  return '{"pollId":' .. cjson.encode(poll.id) .. ',"counts":' .. poll_counts_json(poll) ..
         ',"votes":' .. redis.call('HLEN', VOTES) .. '}'
end

-- poll:tally to the host, or to everyone (members and viewers: aud 1) when the tallies are public.
-- The caller touches the room (the event moved its seq).
local function publish_tally(room, poll, now)
  local meta = poll.public and {aud = 1} or {to = {room.hostId}}
  local seq = publish_raw(room, 'poll:tally', poll_tally_json(poll), meta)
  redis.call('HSET', POLL, 'tallyAt', now, 'dirty', '0')
  return seq
end

-- The `poll` of a room:state: the open poll {pollId, choices, prompt ('' if none), publicTallies,
-- vote, counts?, votes?} as JSON, or 'null'. vote = viewer_id's choice (null for a member or no
-- vote yet); counts and votes only with_counts (the host) or when the tallies are public.
local function poll_json(room, viewer_id, with_counts)
  local poll = load_poll()
  if not poll or not poll.open then return 'null' end
  local vote = viewer_id and redis.call('HGET', VOTES, viewer_id)
  local text = '{"pollId":' .. cjson.encode(poll.id) .. ',"choices":' .. poll.choices ..
               ',"prompt":' .. cjson.encode(poll.prompt) ..
               ',"publicTallies":' .. (poll.public and 'true' or 'false') ..
               ',"vote":' .. (vote and cjson.encode(vote) or 'null')
  if with_counts or poll.public then
    text = text .. ',"counts":' .. poll_counts_json(poll) .. ',"votes":' .. redis.call('HLEN', VOTES)
  end
  return text .. '}'
end
