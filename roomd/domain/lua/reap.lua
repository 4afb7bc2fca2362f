-- ARGV: instance, timeout_ms, batch, ttl_ms, now, force ('1': retire the caller's own instance)
-- One batch of disconnecting the members of a dead instance (heartbeat older than
-- timeout_ms, checked again here, atomically with the work). Up to batch entries of
-- its socket index are taken out; each whose user still has that socket is marked
-- disconnected with user:disconnected, exactly as when a socket closes. Entries
-- leave the index as they are handled, so concurrent reapers never handle one twice.
-- Once the index is empty the instance leaves roomd:instances.
-- Returns {members marked disconnected, 1 if the instance is done else 0}, or
-- {0, -1} if the instance is alive after all.
local instance, timeout, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, now, force = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local key = instance_sockets_key(instance)
local score = redis.call('ZSCORE', INSTANCES, instance)
if not force then
  if score ~= false and tonumber(score) >= redis_time_ms() - timeout then return {0, -1} end
end
-- Its sockets were last known alive at its last heartbeat: a host's grace counts from there.
local last_seen = now
if score ~= false then last_seen = math.min(now, tonumber(score)) end
local marked = 0
for _, entry in ipairs(redis.call('SPOP', key, batch)) do
  local code, user_id, socket_id = string.match(entry, '^([^|]+)|([^|]+)|(.+)$')
  if code then
    local raw = redis.call('GET', room_key(code))
    if raw and is_member(code, user_id) then
      local user = load_user(user_id)
      if user and user.socketId == socket_id then
        mark_disconnected(code, cjson.decode(raw), user, ttl, now, last_seen)
        marked = marked + 1
      end
    end
  end
end
if redis.call('SCARD', key) > 0 then return {marked, 0} end
redis.call('ZREM', INSTANCES, instance)
return {marked, 1}
