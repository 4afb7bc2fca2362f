-- ARGV: instance, timeout_ms, limit
-- The instance's heartbeat (Redis TIME, the clock every instance shares), and up to
-- limit other instances whose heartbeat is older than timeout_ms: candidates for
-- reap.lua, which checks again. Stale entries are left for reap.lua to remove, so
-- an instance that died holding sockets is found until its members are disconnected.
local instance, timeout, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = redis_time_ms()
redis.call('ZADD', INSTANCES, now, instance)
return redis.call('ZRANGEBYSCORE', INSTANCES, '-inf', string.format('(%d', now - timeout), 'LIMIT', 0, limit)
