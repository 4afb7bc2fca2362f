-- ARGV: code, grace_ms, ttl_ms, now, instance_timeout_ms (optional: a heartbeat older than this
--       marks an instance dead, and its members cannot inherit)
-- hostMigration 'disconnect': called by every instance's sweep for rooms whose host has
-- had no socket since before now - grace (rooms:hostless). Re-checks everything, so
-- concurrent sweeps hand the role over once: to the longest-standing connected member,
-- announced as room:host_updated {reason: HOST_DISCONNECTED}. With nobody connected (through a
-- live instance) the
-- room leaves the sweep; the next connect puts it back (track_host).
-- Returns 1 if the host changed, else 0.
local code, grace, ttl, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local timeout = tonumber(ARGV[5] or '')
local raw = redis.call('GET', room_key(code))
if not raw then
  redis.call('ZREM', HOSTLESS_KEY, code)
  return 0
end
local room = cjson.decode(raw)
if room.hostMigration ~= 'disconnect' or not room.hostAwaySince then
  redis.call('ZREM', HOSTLESS_KEY, code)
  return 0
end
local host = load_user(room.hostId)
if host and host.isConnected then
  redis.call('ZREM', HOSTLESS_KEY, code)
  return 0
end
if now - room.hostAwaySince < grace then
  redis.call('ZADD', HOSTLESS_KEY, room.hostAwaySince, code)
  return 0
end
local cutoff = nil
if timeout then cutoff = redis_time_ms() - timeout end
local heir = nil
for _, id in ipairs(redis.call('SMEMBERS', users_key(code))) do
  local u = load_user(id)
  if u and u.isConnected and id ~= room.hostId and (heir == nil or u.joinSeq < heir.joinSeq)
     and (cutoff == nil or instance_alive(u.instance, cutoff)) then
    heir = u
  end
end
if not heir then
  redis.call('ZREM', HOSTLESS_KEY, code)
  return 0
end
local old_host = room.hostId
room.hostId = heir.id
room.hostAwaySince = nil
redis.call('ZREM', HOSTLESS_KEY, code)
publish(code, room, 'room:host_updated', {hostId = heir.id, reason = 'HOST_DISCONNECTED'},
        {resync = {heir.id, old_host}})
touch(code, room, ttl, now)
return 1
