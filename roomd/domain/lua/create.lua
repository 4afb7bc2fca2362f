-- ARGV: code, user_id, display_name, max_users, ttl_ms, now, incarnation, options JSON
-- Claims the code if no room uses it: neither a live room nor one whose claim is still
-- there (expired by Redis but not swept yet: its members have not had room:closed
-- {EXPIRED}, so their sockets still listen on the code's channel). The caller offers one
-- candidate code per call (every code is another slot) and adds the room to rooms:index
-- and rooms:expiry right after.
-- The room keeps its own rules (ttlMs, maxUsers, and from options playerMessages,
-- hostMigration, historySize, audience) and a fresh incarnation id that every event of this
-- room carries. A room with an audience records audience, audienceLocked and audienceCount
-- (and its claim says so: the expiry sweep's room:closed then closes the viewers too).
-- Returns 1 if the room was created, 0 if the code is taken.
local code, user_id, name = ARGV[1], ARGV[2], ARGV[3]
local max_users, ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local incarnation = ARGV[7]
local options = cjson.decode(ARGV[8])
if redis.call('EXISTS', ROOM) == 1 or redis.call('EXISTS', CLAIM) == 1 then return reply(0) end
redis.call('DEL', USERS, HISTORY, STATE, VALUES, AUDIENCE, ONLINE, POLL, VOTES, COUNTS)
local room = {code = code, hostId = user_id, isLocked = false, maxUsers = max_users,
              state = 'open', createdAt = now, seq = 0, joinSeq = 1, ttlMs = ttl,
              incarnation = incarnation, playerMessages = options.playerMessages,
              hostMigration = options.hostMigration, historySize = options.historySize, stateBytes = 0}
if options.audience then
  room.audience, room.audienceLocked, room.audienceCount, room.audienceCountAt = true, false, 0, 0
end
local user = {id = user_id, displayName = name, roomCode = code, isConnected = false,
              socketId = '', joinedAt = now, joinSeq = 1}
redis.call('SET', CLAIM, cjson.encode({incarnation = incarnation, createdAt = now,
                                       audience = options.audience and true or nil}))
save_user(user)
touch(room, ttl, now)
return reply(1)
