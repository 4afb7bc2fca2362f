-- ARGV: code, audience_id, display_name, max (AUDIENCE_MAX), now
-- Admits a viewer to the room's audience (POST /rooms/:code/audience): checked and written in
-- one step, so concurrent admissions never exceed max. A locked room still admits viewers;
-- only a locked audience refuses them. No event (the host learns the audience's size from
-- audience:count, counted on connect) and the room's TTL is left as it is. Errors:
-- ROOM_NOT_FOUND, AUDIENCE_DISABLED (created without an audience), AUDIENCE_LOCKED, AUDIENCE_FULL.
-- Returns 1.
local id, name = ARGV[2], ARGV[3]
local max, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room()
if room.err then return room end
if not room.audience then return redis.error_reply('AUDIENCE_DISABLED') end
if room.audienceLocked then return redis.error_reply('AUDIENCE_LOCKED') end
if redis.call('HLEN', AUDIENCE) >= max then return redis.error_reply('AUDIENCE_FULL') end
redis.call('HSET', AUDIENCE, id, cjson.encode({id = id, displayName = name, joinedAt = now}))
expire_with_room(AUDIENCE)
return reply(1)
