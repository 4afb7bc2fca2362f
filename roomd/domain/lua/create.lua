-- ARGV: user_id, display_name, max_users, ttl_ms, now, options JSON, candidate codes...
-- options: {playerMessages, hostMigration, historySize}, kept in the room record.
-- Claims the first candidate code no live room uses. Returns the code, or nil.
local user_id, name = ARGV[1], ARGV[2]
local max_users, ttl, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local options = cjson.decode(ARGV[6])
for i = 7, #ARGV do
  local code = ARGV[i]
  if redis.call('EXISTS', room_key(code)) == 0 then
    redis.call('DEL', users_key(code), history_key(code), state_key(code), values_key(code))
    local room = {code = code, hostId = user_id, isLocked = false, maxUsers = max_users,
                  state = 'open', createdAt = now, seq = 0, joinSeq = 1,
                  playerMessages = options.playerMessages, hostMigration = options.hostMigration,
                  historySize = options.historySize, stateBytes = 0}
    local user = {id = user_id, displayName = name, roomCode = code, isConnected = false,
                  socketId = '', joinedAt = now, joinSeq = 1}
    redis.call('SET', user_key(user_id), cjson.encode(user), 'PX', ttl)
    redis.call('SADD', users_key(code), user_id)
    redis.call('ZADD', 'rooms:index', now, code)
    redis.call('ZREM', HOSTLESS_KEY, code)
    touch(code, room, ttl, now)
    return code
  end
end
return false
