-- Shared by every script (prepended at load time). Redis 6.2 compatible.
-- Keys: room:{code} (JSON), room:{code}:users (SET), user:{id} (JSON),
-- rooms:index (ZSET code -> createdAt ms), rooms:expiry (ZSET code -> expiresAt ms),
-- rooms:incarnations (HASH code -> incarnation id, as long as the code is in rooms:expiry),
-- roomd:instances (ZSET instance id -> last heartbeat, Redis TIME ms),
-- roomd:instance:{id}:sockets (SET of 'code|userId|socketId' the instance holds).
-- Channel: room:{code}:events. Times are integer milliseconds since the epoch.
local function room_key(code) return 'room:' .. code end
local function users_key(code) return 'room:' .. code .. ':users' end
local function user_key(id) return 'user:' .. id end
local function channel(code) return 'room:' .. code .. ':events' end
local INCARNATIONS = 'rooms:incarnations'
local INSTANCES = 'roomd:instances'
local function instance_sockets_key(id) return 'roomd:instance:' .. id .. ':sockets' end
local function socket_entry(code, user_id, socket_id) return code .. '|' .. user_id .. '|' .. socket_id end

-- Liveness is judged by Redis's clock, the one every instance shares (no skew between hosts).
local function redis_time_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An instance is alive while its heartbeat is at or after cutoff. A socket recorded
-- without an instance (written before instances were recorded) counts as alive.
local function instance_alive(id, cutoff)
  if id == nil or id == '' then return true end
  local score = redis.call('ZSCORE', INSTANCES, id)
  return score ~= false and tonumber(score) >= cutoff
end

-- Forget the socket a user record names in its instance's socket index (if any).
local function unindex_socket(code, user)
  if user.socketId and user.socketId ~= '' and user.instance and user.instance ~= '' then
    redis.call('SREM', instance_sockets_key(user.instance), socket_entry(code, user.id, user.socketId))
  end
end

-- The room's own TTL (stored at create: the room's rules live in the room), else the
-- caller's (rooms created before the TTL was stored).
local function room_ttl(room, fallback_ms)
  return tonumber(room.ttlMs) or fallback_ms
end

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
-- connecting socket can drop events its room:state snapshot already reflects;
-- meta.inc is the room's incarnation, so a socket of an older room that had the
-- same code drops events of this one.
local function publish(code, room, event, data, meta)
  room.seq = (room.seq or 0) + 1
  meta = meta or {}
  meta.seq = room.seq
  meta.inc = room.incarnation
  redis.call('PUBLISH', channel(code), cjson.encode(meta) .. '\n' .. cjson.encode({event = event, data = data}))
end

-- Save the room and give every key of the room the same fresh TTL: the room's
-- own (ttl_ms only for rooms that predate it), whoever acts (roomd or roomctl).
local function touch(code, room, ttl_ms, now)
  ttl_ms = room_ttl(room, ttl_ms)
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
  for _, id in ipairs(ids) do
    local u = load_user(id)
    if u then unindex_socket(code, u) end
    redis.call('DEL', user_key(id))
  end
  redis.call('DEL', room_key(code), users_key(code))
  redis.call('ZREM', 'rooms:index', code)
  redis.call('ZREM', 'rooms:expiry', code)
  redis.call('HDEL', INCARNATIONS, code)
end

-- Mark a member disconnected and tell the room, exactly as when their socket closes.
local function mark_disconnected(code, room, user, ttl_ms, now)
  unindex_socket(code, user)
  user.isConnected = false
  user.socketId = ''
  user.instance = ''
  redis.call('SET', user_key(user.id), cjson.encode(user), 'PX', room_ttl(room, ttl_ms))
  publish(code, room, 'user:disconnected', {user = public_user(user, room)})
  touch(code, room, ttl_ms, now)
end

-- A host event from actor ('' = an administrator, who needs no membership).
local function check_host(code, room, actor)
  if actor == '' then return nil end
  if not is_member(code, actor) then return redis.error_reply('MEMBER_NOT_FOUND') end
  if room.hostId ~= actor then return redis.error_reply('NOT_HOST') end
  return nil
end

-- The heir to the host role: the longest-standing member connected through a live
-- instance (heartbeat at or after cutoff; nil cutoff: any instance counts as live),
-- else the longest-standing disconnected member, else (only ghosts remain: members
-- still marked connected through a dead instance) the longest-standing one. nil if
-- nobody remains.
local function next_host(code, cutoff)
  local live, offline, any = nil, nil, nil
  for _, id in ipairs(redis.call('SMEMBERS', users_key(code))) do
    local u = load_user(id)
    if u then
      if any == nil or u.joinSeq < any.joinSeq then any = u end
      if not u.isConnected then
        if offline == nil or u.joinSeq < offline.joinSeq then offline = u end
      elseif (live == nil or u.joinSeq < live.joinSeq) and (cutoff == nil or instance_alive(u.instance, cutoff)) then
        live = u
      end
    end
  end
  return live or offline or any
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
