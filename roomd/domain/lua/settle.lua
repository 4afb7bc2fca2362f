-- Not a room script (no prelude). KEYS[1]: a cross-room sorted set (rooms:index,
-- rooms:expiry, rooms:hostless, roomd:instances). ARGV: member, mode ('eq' | 'le'),
-- score, new score ('' = remove).
-- Changes the member's entry only if its score is still the one the caller based its
-- decision on ('eq': equal to score; 'le': at most score): an entry some other
-- instance re-armed or re-added meanwhile (a new room that took the code) is left
-- alone. Returns 1 if the entry changed, else 0.
local member, mode, expected, new = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local raw = redis.call('ZSCORE', KEYS[1], member)
if not raw then return 0 end
local score = tonumber(raw)
if (mode == 'eq' and score ~= expected) or (mode == 'le' and score > expected) then return 0 end
if new == '' then return redis.call('ZREM', KEYS[1], member) end
redis.call('ZADD', KEYS[1], tonumber(new), member)
return 1
