-- ARGV: code, actor_id ('' = administrator), poll id, choices JSON (list of unique strings),
--       prompt ('' = none), public ('1'/'0'), ttl_ms, now
-- Host only. Opens a poll in a room with an audience (AUDIENCE_DISABLED otherwise); one open poll
-- per room (POLL_ALREADY_OPEN). The previous poll's votes and counts go; every choice starts at 0.
-- Publishes poll:opened to members and viewers (aud 1). Returns its seq.
local code, actor, poll_id, choices_json, prompt, public = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ttl, now = tonumber(ARGV[7]), tonumber(ARGV[8])
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
if not room.audience then return redis.error_reply('AUDIENCE_DISABLED') end
if redis.call('HGET', POLL, 'open') == '1' then return redis.error_reply('POLL_ALREADY_OPEN') end
redis.call('DEL', POLL, VOTES, COUNTS)
redis.call('HSET', POLL, 'id', poll_id, 'choices', choices_json, 'prompt', prompt, 'public', public,
           'open', '1', 'tallyAt', '0', 'dirty', '0')
local zeros = {}
for _, choice in ipairs(cjson.decode(choices_json)) do
  table.insert(zeros, choice)
  table.insert(zeros, 0)
end
redis.call('HSET', COUNTS, unpack(zeros))
local seq = publish_raw(room, 'poll:opened', '{"pollId":' .. cjson.encode(poll_id) .. ',"choices":' ..
                        choices_json .. ',"prompt":' .. cjson.encode(prompt) .. ',"publicTallies":' ..
                        (public == '1' and 'true' or 'false') .. '}', {aud = 1})
touch(room, ttl, now)  -- POLL and COUNTS get the room's TTL (VOTES: its first vote)
return reply(seq)
