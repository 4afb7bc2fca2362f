-- ARGV: code, ttl_ms (configured), now
-- An administrator's "keep this room": every key of the room gets a fresh TTL,
-- the room's own (room.ttlMs, when the record has one) else the configured one.
-- Nothing else changes: no event (members' state is the same), and updatedAt
-- stays, so an idle room stays idle. Returns {the new expiresAt (ms), the room's incarnation}.
local now = tonumber(ARGV[3])
local room = load_room()
if room.err then return room end
local ttl = tonumber(room.ttlMs) or tonumber(ARGV[2])
room.expiresAt = now + ttl
redis.call('SET', ROOM, cjson.encode(room), 'PX', ttl)
expire_room_keys(ttl, room)
return reply({room.expiresAt, room.incarnation or ''})
