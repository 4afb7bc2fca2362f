-- Shared by every script (prepended at load time). Redis 6.2 compatible.
-- Keys: room:{code} (JSON), room:{code}:users (SET), user:{id} (JSON),
-- rooms:index (ZSET code -> createdAt ms), rooms:expiry (ZSET code -> expiresAt ms).
-- Channel: room:{code}:events. Times are integer milliseconds since the epoch.
local function room_key(code) return 'room:' .. code end
local function users_key(code) return 'room:' .. code .. ':users' end
local function user_key(id) return 'user:' .. id end
local function channel(code) return 'room:' .. code .. ':events' end

local function load_room(code)
  local raw = redis.call('GET', room_key(code))
  if not raw then return redis.error_reply('ROOM_NOT_FOUND') end
  return cjson.decode(raw)
end

local function load_user(id)
  local raw = redis.call('GET', user_key(id))
  if not raw then return nil end
  return cjson.decode(raw)
end

local function is_member(code, id)
  return id ~= '' and redis.call('SISMEMBER', users_key(code), id) == 1
end

local function public_user(user, room)
  return {id = user.id, displayName = user.displayName, isConnected = user.isConnected,
          isHost = (room.hostId == user.id)}
end

-- Bus message: '<meta JSON>\n<frame JSON>'. The frame is what members receive,
-- encoded once here; meta tells each instance who gets it and whom to close
-- (skip, direct, close). meta.seq is the room's event sequence number, so a
-- connecting socket can drop events its room:state snapshot already reflects.
local function publish(code, room, event, data, meta)
  room.seq = (room.seq or 0) + 1
  meta = meta or {}
  meta.seq = room.seq
  redis.call('PUBLISH', channel(code), cjson.encode(meta) .. '\n' .. cjson.encode({event = event, data = data}))
end

-- Save the room and give every key of the room the same fresh TTL.
local function touch(code, room, ttl_ms, now)
  room.updatedAt = now
  room.expiresAt = now + ttl_ms
  redis.call('SET', room_key(code), cjson.encode(room), 'PX', ttl_ms)
  local ids = redis.call('SMEMBERS', users_key(code))
  if #ids > 0 then redis.call('PEXPIRE', users_key(code), ttl_ms) end
  for _, id in ipairs(ids) do redis.call('PEXPIRE', user_key(id), ttl_ms) end
  redis.call('ZADD', 'rooms:expiry', now + ttl_ms, code)
end

local function delete_room(code)
  local ids = redis.call('SMEMBERS', users_key(code))
  for _, id in ipairs(ids) do redis.call('DEL', user_key(id)) end
  redis.call('DEL', room_key(code), users_key(code))
  redis.call('ZREM', 'rooms:index', code)
  redis.call('ZREM', 'rooms:expiry', code)
end

-- A host event from actor ('' = an administrator, who needs no membership).
local function check_host(code, room, actor)
  if actor == '' then return nil end
  if not is_member(code, actor) then return redis.error_reply('MEMBER_NOT_FOUND') end
  if room.hostId ~= actor then return redis.error_reply('NOT_HOST') end
  return nil
end

-- The longest-standing member, preferring connected ones; nil if none remain.
local function next_host(code)
  local best, best_connected = nil, nil
  for _, id in ipairs(redis.call('SMEMBERS', users_key(code))) do
    local u = load_user(id)
    if u then
      if best == nil or u.joinSeq < best.joinSeq then best = u end
      if u.isConnected and (best_connected == nil or u.joinSeq < best_connected.joinSeq) then
        best_connected = u
      end
    end
  end
  return best_connected or best
end

-- The room:state payload {room, users} (users oldest first) as JSON.
local function snapshot_json(code, room)
  local users = {}
  for _, id in ipairs(redis.call('SMEMBERS', users_key(code))) do
    local u = load_user(id)
    if u then table.insert(users, u) end
  end
  table.sort(users, function(a, b) return a.joinSeq < b.joinSeq end)
  local public = {}
  for i, u in ipairs(users) do public[i] = public_user(u, room) end
  return cjson.encode({room = room, users = public})
end
