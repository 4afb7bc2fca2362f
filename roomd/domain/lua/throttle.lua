-- Not a room script (no prelude). KEYS: this window's counter, the previous window's
-- (roomd/domain/keys.py Layout.throttle: the client is the hash tag, one slot).
-- ARGV: limit, window_ms, now (the caller computed the window from the same now).
-- Sliding-window counter (two fixed windows, the previous one weighted by how
-- much of it still overlaps): O(1) per request whatever the traffic, shared
-- by every roomd instance. Returns {allowed 0|1, retry_after_ms}.
local cur_key, prev_key = KEYS[1], KEYS[2]
local limit, window_ms, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window = math.floor(now / window_ms)
local cur = tonumber(redis.call('GET', cur_key) or '0')
local prev = tonumber(redis.call('GET', prev_key) or '0')
local elapsed = now - window * window_ms
local weight = (window_ms - elapsed) / window_ms
if prev * weight + cur >= limit then
  local retry = window_ms - elapsed
  if cur < limit and prev > 0 then
    -- the previous window's weight must fall until prev * w + cur < limit
    local needed_weight = (limit - cur) / prev
    retry = math.max(1, math.ceil((1 - needed_weight) * window_ms - elapsed))
  end
  return {0, retry}
end
redis.call('INCR', cur_key)
redis.call('PEXPIRE', cur_key, 2 * window_ms)
return {1, 0}
