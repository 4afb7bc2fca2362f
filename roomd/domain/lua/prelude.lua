-- Shared by every script (prepended at load time). Redis 6.2 compatible.
-- Keys: room:{code} (JSON), room:{code}:users (SET), user:{id} (JSON),
-- rooms:index (ZSET code -> createdAt ms), rooms:expiry (ZSET code -> expiresAt ms),
-- rooms:incarnations (HASH code -> incarnation id, as long as the code is in rooms:expiry),
-- roomd:instances (ZSET instance id -> last heartbeat, Redis TIME ms),
-- roomd:instance:{id}:sockets (SET of 'code|userId|socketId' the instance holds),
-- room:{code}:history (LIST of bus messages), room:{code}:state (HASH key -> entry JSON
-- {version, visibleTo, writableBy, size}), room:{code}:state:values (HASH key -> value JSON),
-- rooms:hostless (ZSET code -> ms since which the host has had no socket).
-- Channel: room:{code}:events. Times are integer milliseconds since the epoch.
local function room_key(code) return 'room:' .. code end
local function users_key(code) return 'room:' .. code .. ':users' end
local function user_key(id) return 'user:' .. id end
local function channel(code) return 'room:' .. code .. ':events' end
local INCARNATIONS = 'rooms:incarnations'
local INSTANCES = 'roomd:instances'
local function instance_sockets_key(id) return 'roomd:instance:' .. id .. ':sockets' end
local function socket_entry(code, user_id, socket_id) return code .. '|' .. user_id .. '|' .. socket_id end
local function history_key(code) return 'room:' .. code .. ':history' end
local function state_key(code) return 'room:' .. code .. ':state' end
local function values_key(code) return 'room:' .. code .. ':state:values' end
local HOSTLESS_KEY = 'rooms:hostless'
local DEFAULT_HISTORY_SIZE = 256

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
-- encoded once here, with the room's sequence number as its top-level seq; meta
-- tells each instance who gets it and whom to close (roomd/bus.py BusMessage):
-- seq, inc (the room's incarnation: a socket of an older room that had the same
-- code drops events of this one), to (the only users who may receive it; absent =
-- every member), skip, direct, close, resync (users whose view of the state changed
-- wholesale: they re-read a snapshot). Every message is also kept in the room's
-- history (the last room.historySize) for ?since= replays.
-- data_json is already JSON: game data and state values are spliced in verbatim,
-- never decoded (cjson would round numbers to 14 digits).
local function publish_raw(code, room, event, data_json, meta)
  room.seq = (room.seq or 0) + 1
  meta = meta or {}
  meta.seq = room.seq
  meta.inc = room.incarnation
  local message = cjson.encode(meta) .. '\n{"event":"' .. event .. '","data":' .. data_json ..
                  ',"seq":' .. room.seq .. '}'
  redis.call('PUBLISH', channel(code), message)
  local history = history_key(code)
  redis.call('RPUSH', history, message)
  redis.call('LTRIM', history, -(room.historySize or DEFAULT_HISTORY_SIZE), -1)
  return room.seq
end

local function publish(code, room, event, data, meta)
  return publish_raw(code, room, event, cjson.encode(data), meta)
end

-- Every key of a room but its record gets ttl_ms: members, users, history, state.
local function expire_room_keys(code, ttl_ms)
  local ids = redis.call('SMEMBERS', users_key(code))
  if #ids > 0 then redis.call('PEXPIRE', users_key(code), ttl_ms) end
  for _, id in ipairs(ids) do redis.call('PEXPIRE', user_key(id), ttl_ms) end
  redis.call('PEXPIRE', history_key(code), ttl_ms)
  redis.call('PEXPIRE', state_key(code), ttl_ms)
  redis.call('PEXPIRE', values_key(code), ttl_ms)
end

-- Save the room and give every key of the room the same fresh TTL: the room's
-- own (ttl_ms only for rooms that predate it), whoever acts (roomd or roomctl).
local function touch(code, room, ttl_ms, now)
  ttl_ms = room_ttl(room, ttl_ms)
  room.updatedAt = now
  room.expiresAt = now + ttl_ms
  redis.call('SET', room_key(code), cjson.encode(room), 'PX', ttl_ms)
  expire_room_keys(code, ttl_ms)
  redis.call('ZADD', 'rooms:expiry', now + ttl_ms, code)
end

local function delete_room(code)
  local ids = redis.call('SMEMBERS', users_key(code))
  for _, id in ipairs(ids) do
    local u = load_user(id)
    if u then unindex_socket(code, u) end
    redis.call('DEL', user_key(id))
  end
  redis.call('DEL', room_key(code), users_key(code), history_key(code), state_key(code), values_key(code))
  redis.call('ZREM', 'rooms:index', code)
  redis.call('ZREM', 'rooms:expiry', code)
  redis.call('ZREM', HOSTLESS_KEY, code)
  redis.call('HDEL', INCARNATIONS, code)
end

-- hostMigration 'disconnect': keep rooms:hostless true to the host's presence. The score
-- (room.hostAwaySince) is when the host's last socket went; every instance's sweep hands
-- the role over once it is older than HOST_GRACE_SECONDS (host_grace.lua re-checks).
local function track_host(code, room, now)
  if room.hostMigration ~= 'disconnect' then return end
  local host = load_user(room.hostId)
  if host and host.isConnected then
    room.hostAwaySince = nil
    redis.call('ZREM', HOSTLESS_KEY, code)
  else
    room.hostAwaySince = room.hostAwaySince or now
    redis.call('ZADD', HOSTLESS_KEY, room.hostAwaySince, code)
  end
end

-- Mark a member disconnected and tell the room, exactly as when their socket closes.
-- gone_since (default now): when the socket was last known alive, for the host grace.
local function mark_disconnected(code, room, user, ttl_ms, now, gone_since)
  unindex_socket(code, user)
  user.isConnected = false
  user.socketId = ''
  user.instance = ''
  redis.call('SET', user_key(user.id), cjson.encode(user), 'PX', room_ttl(room, ttl_ms))
  -- skip: a member never hears of its own disconnection (a replay would show it offline).
  publish(code, room, 'user:disconnected', {user = public_user(user, room)}, {skip = user.id})
  if room.hostId == user.id then track_host(code, room, gone_since or now) end
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

-- Shared state visibility. visibleTo is 'all', 'host' or a list of user ids; the host
-- always reads. readers() is nil for "every member", else the list of ids to publish to
-- (members only: visibility to a user id follows the member).
local function can_read(room, visible, user_id)
  if visible == 'all' or user_id == room.hostId then return true end
  if type(visible) == 'table' then
    for _, id in ipairs(visible) do if id == user_id then return true end end
  end
  return false
end

local function readers(code, room, visible)
  if visible == 'all' then return nil end
  local ids = {room.hostId}
  if type(visible) == 'table' then
    for _, id in ipairs(visible) do
      if id ~= room.hostId and is_member(code, id) then table.insert(ids, id) end
    end
  end
  return ids
end

-- {"key":{"value":...,"version":n},...}: the entries user_id may read, values verbatim.
local function state_json(code, room, user_id)
  local parts = {}
  local flat = redis.call('HGETALL', state_key(code))
  for i = 1, #flat, 2 do
    local key, entry = flat[i], cjson.decode(flat[i + 1])
    if can_read(room, entry.visibleTo, user_id) then
      local value = redis.call('HGET', values_key(code), key)
      if value then
        table.insert(parts, cjson.encode(key) .. ':{"value":' .. value .. ',"version":' .. entry.version .. '}')
      end
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
