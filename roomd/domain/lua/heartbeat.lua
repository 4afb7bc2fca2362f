-- Not a room script (no prelude). KEYS[1]: roomd:instances. ARGV: instance ('' = only look),
-- timeout_ms, limit.
-- The instance's heartbeat (Redis TIME, the clock every instance shares), and up to
-- limit instances whose heartbeat is older than timeout_ms: candidates for reaping,
-- which checks again. Stale entries are left for the reaper to remove, so an instance
-- that died holding sockets is found until its members are disconnected.
local instance, timeout, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if instance ~= '' then redis.call('ZADD', KEYS[1], now, instance) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - timeout), 'LIMIT', 0, limit)
