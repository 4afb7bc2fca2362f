-- ARGV: code, incarnation (of the rooms:hostless entry), grace_ms, ttl_ms, now, live instances (JSON list of the instance ids whose
--       heartbeat is fresh; '' = all live: a member of another instance cannot inherit)
-- hostMigration 'disconnect': called by every instance's sweep for rooms whose
-- rooms:hostless entry is older than now - grace. Re-checks everything, so concurrent
-- sweeps and a lagging index hand the role over once: to the longest-standing connected
-- member, announced as room:host_updated {reason: HOST_DISCONNECTED}. With nobody connected
-- (through a live instance) the room leaves the sweep; the next connect puts it back.
-- Returns 1 if the host changed, else 0; a hostless hint (the host's real hostAwaySince)
-- while the hand-over is still pending: the caller re-arms the entry with it, and
-- otherwise drops it.
local incarnation = ARGV[2]
local grace, ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local live = live_set(ARGV[6])
local raw = redis.call('GET', ROOM)
if not raw then return reply(0) end
local room = cjson.decode(raw)
if (room.incarnation or '') ~= incarnation then return reply(0) end  -- a newer room took the code
if room.hostMigration ~= 'disconnect' or not room.hostAwaySince then return reply(0) end
local host = load_user(room.hostId)
if host and host.isConnected then return reply(0) end
if now - room.hostAwaySince < grace then
  hint(room, 'hostless', room.hostAwaySince)
  return reply(0)
end
local heir = nil
for _, u in ipairs(all_users()) do
  if u.isConnected and u.id ~= room.hostId and (heir == nil or u.joinSeq < heir.joinSeq)
     and instance_alive(live, u.instance) then
    heir = u
  end
end
if not heir then return reply(0) end
local old_host = room.hostId
room.hostId = heir.id
room.hostAwaySince = nil
publish(room, 'room:host_updated', {hostId = heir.id, reason = 'HOST_DISCONNECTED'},
        {resync = {heir.id, old_host}})
touch(room, ttl, now)
return reply(1)
