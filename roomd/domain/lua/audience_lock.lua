-- ARGV: code, actor_id ('' = administrator), locked ('1' | '0'), ttl_ms, now
-- The host locks or unlocks the audience: a locked audience admits no new viewer
-- (AUDIENCE_LOCKED); viewers admitted already stay. Broadcasts audience:lock_updated {locked}
-- to the members only on a change. Errors: NOT_HOST, MEMBER_NOT_FOUND, AUDIENCE_DISABLED.
-- Returns {1 if the audience is now locked else 0, seq}.
local actor, locked = ARGV[2], ARGV[3] == '1'
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
local denied = check_host(room, actor)
if denied then return denied end
if not room.audience then return redis.error_reply('AUDIENCE_DISABLED') end
if (room.audienceLocked and true or false) ~= locked then
  room.audienceLocked = locked
  publish(room, 'audience:lock_updated', {locked = locked})
  touch(room, ttl, now)
end
return reply({locked and 1 or 0, room.seq or 0})
