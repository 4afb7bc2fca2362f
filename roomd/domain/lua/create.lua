-- ARGV: user_id, display_name, max_users, ttl_ms, now, incarnation, options JSON, candidate codes...
-- Claims the first candidate code no room uses: neither a live room nor one still
-- in rooms:expiry (expired by Redis but not swept yet: its members have not had
-- room:closed {EXPIRED}, so their sockets still listen on the code's channel).
-- The room keeps its own rules (ttlMs, maxUsers, and from options playerMessages,
-- hostMigration, historySize) and a fresh incarnation id that every event of this
-- room carries. Returns the code, or false if none was free.
local user_id, name = ARGV[1], ARGV[2]
local max_users, ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local incarnation = ARGV[6]
local options = cjson.decode(ARGV[7])
for i = 8, #ARGV do
  local code = ARGV[i]
  if redis.call('EXISTS', room_key(code)) == 0 and redis.call('ZSCORE', 'rooms:expiry', code) == false then
    redis.call('DEL', users_key(code), history_key(code), state_key(code), values_key(code))
    local room = {code = code, hostId = user_id, isLocked = false, maxUsers = max_users,
                  state = 'open', createdAt = now, seq = 0, joinSeq = 1, ttlMs = ttl,
                  incarnation = incarnation, playerMessages = options.playerMessages,
                  hostMigration = options.hostMigration, historySize = options.historySize, stateBytes = 0}
    local user = {id = user_id, displayName = name, roomCode = code, isConnected = false,
                  socketId = '', joinedAt = now, joinSeq = 1}
    redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
    redis.call('SADD', users_key(code), user_id)
    redis.call('ZADD', 'rooms:index', now, code)
    redis.call('ZREM', HOSTLESS_KEY, code)
    redis.call('HSET', INCARNATIONS, code, incarnation)
    touch(code, room, ttl, now)
    return code
  end
end
return false
