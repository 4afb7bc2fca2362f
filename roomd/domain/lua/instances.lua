-- Not a room script (no prelude). Read-only. KEYS[1]: roomd:instances. ARGV: timeout_ms,
-- instance ('' = none).
-- Judged by Redis's clock (TIME), the one every instance shares: returns
-- {live instance ids (heartbeat at or after now - timeout_ms), instance's heartbeat
--  (-1 if it has none), 1 if instance is stale (or has no heartbeat) else 0}.
local timeout, instance = tonumber(ARGV[1]), ARGV[2] or ''
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - timeout
local live = redis.call('ZRANGEBYSCORE', KEYS[1], cutoff, '+inf')
local score, stale = -1, 1
if instance ~= '' then
  local raw = redis.call('ZSCORE', KEYS[1], instance)
  if raw then
    score = tonumber(raw)
    if score >= cutoff then stale = 0 end
  end
end
return {live, score, stale}
