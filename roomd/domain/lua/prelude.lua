-- Shared by every room script (prepended at load time). Redis 6.2 compatible.
-- A room script touches the keys of one room only, all received in KEYS (roomd/domain/keys.py
-- Layout.room_keys builds them, with the room's {CODE} hash tag: one cluster slot), never a
-- name it builds itself, never a cross-room index:
--   KEYS[1] room record (JSON)            KEYS[2] users (HASH user id -> member JSON)
--   KEYS[3] history (LIST of bus messages) KEYS[4] state (HASH key -> entry JSON
--   {version, visibleTo, writableBy, size}) KEYS[5] state values (HASH key -> value JSON)
--   KEYS[6] claim (JSON {incarnation, createdAt}: the code is taken while it exists)
--   KEYS[7] the room's events channel
--   KEYS[8] audience (HASH audienceId -> viewer JSON {id, displayName, joinedAt})
--   KEYS[9] audience online (HASH instance id -> connected viewer sockets on it)
--   KEYS[10] poll (HASH: id, choices JSON, prompt, public, open, tallyAt, dirty)
--   KEYS[11] poll votes (HASH audienceId -> choice)  KEYS[12] poll counts (HASH choice -> count)
--   The audience keys exist only for rooms created with audience = true.
-- ARGV[1] is always the room code. Times are integer milliseconds since the epoch.
-- What the cross-room indexes must learn (rooms:hostless, rooms:index, the instances' socket
-- indexes) goes back to the caller as hints (reply), applied right after the script.
local ROOM, USERS, HISTORY, STATE, VALUES, CLAIM, CHANNEL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local AUDIENCE, ONLINE, POLL, VOTES, COUNTS = KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]
-- Substituted when the script text is built (roomd/domain/store.py): PUBLISH on one Redis or
-- Sentinel, SPUBLISH (sharded pub/sub, routed by the channel's slot) on a Cluster.
local PUBLISH_CMD = 'PUBLISH'
local CLAIM_GRACE_MS = 86400000
local DEFAULT_HISTORY_SIZE = 256

-- Hints for the caller: hostless = ms since which the host has had no socket (add the room to
-- rooms:hostless), hosted = the hostAwaySince that just ended (remove the entry if it still has
-- that score), gone = createdAt of the room just deleted (its rooms:expiry and rooms:hostless
-- entries go, its rooms:index entry if it still has that score), inc = the room's incarnation
-- (rooms:expiry and rooms:hostless members are 'code|incarnation'), unindex = {{instance,
-- entry}, ...} socket-index entries to remove.
local HINTS = {}

local function hint(room, name, value)
  HINTS[name] = value
  HINTS.inc = room.incarnation or ''
end

local function reply(value)
  if next(HINTS) == nil then return {value, ''} end
  return {value, cjson.encode(HINTS)}
end

local function socket_entry(code, user_id, socket_id) return code .. '|' .. user_id .. '|' .. socket_id end

-- Instances counted as live: ARGV JSON list of ids ('' = every instance counts as live).
-- A socket recorded without an instance (written before instances were recorded) counts as live.
local function live_set(arg)
  if arg == nil or arg == '' then return nil end
  local set = {}
  for _, id in ipairs(cjson.decode(arg)) do set[id] = true end
  return set
end

local function instance_alive(live, id)
  if live == nil or id == nil or id == '' then return true end
  return live[id] == true
end

-- Forget the socket a user record names in its instance's socket index (if any): a hint.
local function unindex_socket(code, user)
  if user.socketId and user.socketId ~= '' and user.instance and user.instance ~= '' then
    HINTS.unindex = HINTS.unindex or {}
    table.insert(HINTS.unindex, {user.instance, socket_entry(code, user.id, user.socketId)})
  end
end

-- The room's own TTL (stored at create: the room's rules live in the room), else the
-- caller's (rooms created before the TTL was stored).
local function room_ttl(room, fallback_ms)
  return tonumber(room.ttlMs) or fallback_ms
end

local function load_room()
  local raw = redis.call('GET', ROOM)
  if not raw then return redis.error_reply('ROOM_NOT_FOUND') end
  return cjson.decode(raw)
end

local function load_user(id)
  if id == nil or id == '' then return nil end
  local raw = redis.call('HGET', USERS, id)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function save_user(user)
  redis.call('HSET', USERS, user.id, cjson.encode(user))
end

-- Every member record, in no particular order.
local function all_users()
  local flat = redis.call('HGETALL', USERS)
  local users = {}
  for i = 2, #flat, 2 do table.insert(users, cjson.decode(flat[i])) end
  return users
end

local function is_member(id)
  return id ~= '' and redis.call('HEXISTS', USERS, id) == 1
end

local function public_user(user, room)
  return {id = user.id, displayName = user.displayName, isConnected = user.isConnected,
          isHost = (room.hostId == user.id)}
end

-- Bus message: '<meta JSON>\n<frame JSON>'. The frame is what members receive,
-- encoded once here, with the room's sequence number as its top-level seq; meta
-- tells each instance who gets it and whom to close (roomd/domain/bus_message.py):
-- seq, inc (the room's incarnation: a socket of an older room that had the same
-- code drops events of this one), to (the only users who may receive it; absent =
-- every member), skip, direct, close, resync (users whose view of the state changed
-- wholesale: they re-read a snapshot), aud (below). Every message is also kept in the room's
-- history (the last room.historySize) for ?since= replays.
-- data_json is already JSON: game data and state values are spliced in verbatim,
-- never decoded (cjson would round numbers to 14 digits).
-- aud (the audience, rooms created with audience = true): absent = members only; 1 = members
-- (per to/skip) and every viewer; 2 = viewers only (to = viewer ids). The room's lifecycle
-- events (AUDIENCE_ALSO) get aud 1 here, in one place: viewers see the members change.
local AUDIENCE_ALSO = {['room:closed'] = true, ['user:joined'] = true, ['user:left'] = true,
                       ['user:connected'] = true, ['user:disconnected'] = true,
                       ['room:host_updated'] = true, ['room:lock_toggled'] = true}

local function publish_raw(room, event, data_json, meta)
  room.seq = (room.seq or 0) + 1
  meta = meta or {}
  if room.audience and meta.aud == nil and AUDIENCE_ALSO[event] then meta.aud = 1 end
  meta.seq = room.seq
  meta.inc = room.incarnation
  local message = cjson.encode(meta) .. '\n{"event":"' .. event .. '","data":' .. data_json ..
                  ',"seq":' .. room.seq .. '}'
  redis.call(PUBLISH_CMD, CHANNEL, message)
  redis.call('RPUSH', HISTORY, message)
  redis.call('LTRIM', HISTORY, -(room.historySize or DEFAULT_HISTORY_SIZE), -1)
  return room.seq
end

local function publish(room, event, data, meta)
  return publish_raw(room, event, cjson.encode(data), meta)
end

-- Every key of a room but its record gets ttl_ms (the claim ttl_ms + CLAIM_GRACE_MS: it
-- outlives the room until the expiry sweep has told its members). The audience's keys only
-- in a room with an audience (five PEXPIREs fewer per event everywhere else).
local function expire_room_keys(ttl_ms, room)
  redis.call('PEXPIRE', USERS, ttl_ms)
  redis.call('PEXPIRE', HISTORY, ttl_ms)
  redis.call('PEXPIRE', STATE, ttl_ms)
  redis.call('PEXPIRE', VALUES, ttl_ms)
  redis.call('PEXPIRE', CLAIM, ttl_ms + CLAIM_GRACE_MS)
  if room and room.audience then
    redis.call('PEXPIRE', AUDIENCE, ttl_ms)
    redis.call('PEXPIRE', ONLINE, ttl_ms)
    redis.call('PEXPIRE', POLL, ttl_ms)
    redis.call('PEXPIRE', VOTES, ttl_ms)
    redis.call('PEXPIRE', COUNTS, ttl_ms)
  end
end

-- Save the room and give every key of the room the same fresh TTL: the room's
-- own (ttl_ms only for rooms that predate it), whoever acts (roomd or roomctl).
-- rooms:expiry is not moved: its entry is re-armed by the sweep, which re-checks the room.
local function touch(room, ttl_ms, now)
  ttl_ms = room_ttl(room, ttl_ms)
  room.updatedAt = now
  room.expiresAt = now + ttl_ms
  redis.call('SET', ROOM, cjson.encode(room), 'PX', ttl_ms)
  expire_room_keys(ttl_ms, room)
end

-- Every key of the room goes (the claim too: the code is free again). The cross-room
-- indexes learn it from the 'gone' hint (with room nil, the expiry sweep updates them itself).
local function delete_room(code, room)
  for _, u in ipairs(all_users()) do unindex_socket(code, u) end
  local claim = redis.call('GET', CLAIM)
  redis.call('DEL', ROOM, USERS, HISTORY, STATE, VALUES, CLAIM, AUDIENCE, ONLINE, POLL, VOTES, COUNTS)
  if room then
    -- rooms:index holds the claim's createdAt (the create's own clock), the record's at first
    local created = (claim and cjson.decode(claim).createdAt) or room.createdAt
    hint(room, 'gone', created)
    HINTS.hostless, HINTS.hosted = nil, nil
  end
end

-- hostMigration 'disconnect': keep room.hostAwaySince (and, through hints, rooms:hostless)
-- true to the host's presence. It is when the host's last socket went; every instance's sweep
-- hands the role over once it is older than HOST_GRACE_SECONDS (host_grace.lua re-checks).
local function track_host(room, now)
  if room.hostMigration ~= 'disconnect' then return end
  local host = load_user(room.hostId)
  if host and host.isConnected then
    if room.hostAwaySince then hint(room, 'hosted', room.hostAwaySince) end
    HINTS.hostless = nil
    room.hostAwaySince = nil
  else
    room.hostAwaySince = room.hostAwaySince or now
    hint(room, 'hostless', room.hostAwaySince)
    HINTS.hosted = nil
  end
end

-- Mark a member disconnected and tell the room, exactly as when their socket closes.
-- gone_since (default now): when the socket was last known alive, for the host grace.
local function mark_disconnected(code, room, user, ttl_ms, now, gone_since)
  unindex_socket(code, user)
  user.isConnected = false
  user.socketId = ''
  user.instance = ''
  save_user(user)
  -- skip: a member never hears of its own disconnection (a replay would show it offline).
  publish(room, 'user:disconnected', {user = public_user(user, room)}, {skip = user.id})
  if room.hostId == user.id then track_host(room, gone_since or now) end
  touch(room, ttl_ms, now)
end

-- A host event from actor ('' = an administrator, who needs no membership).
local function check_host(room, actor)
  if actor == '' then return nil end
  if not is_member(actor) then return redis.error_reply('MEMBER_NOT_FOUND') end
  if room.hostId ~= actor then return redis.error_reply('NOT_HOST') end
  return nil
end

-- The heir to the host role: the longest-standing member connected through a live
-- instance (live: set of live instance ids, nil = any instance counts as live), else
-- the longest-standing disconnected member, else (only ghosts remain: members still
-- marked connected through a dead instance) the longest-standing one. nil if nobody remains.
local function next_host(live)
  local heir, offline, any = nil, nil, nil
  for _, u in ipairs(all_users()) do
    if any == nil or u.joinSeq < any.joinSeq then any = u end
    if not u.isConnected then
      if offline == nil or u.joinSeq < offline.joinSeq then offline = u end
    elseif (heir == nil or u.joinSeq < heir.joinSeq) and instance_alive(live, u.instance) then
      heir = u
    end
  end
  return heir or offline or any
end

-- The room:state payload {room, users} (users oldest first) as JSON.
local function snapshot_json(room)
  local users = all_users()
  table.sort(users, function(a, b) return a.joinSeq < b.joinSeq end)
  local public = {}
  for i, u in ipairs(users) do public[i] = public_user(u, room) end
  return cjson.encode({room = room, users = public})
end

-- Shared state visibility. visibleTo is 'all', 'audience' (every member and every viewer of
-- the room's audience), 'host' or a list of user ids; the host always reads. readers() is nil
-- for "every member", else the list of ids to publish to (members only: visibility to a user
-- id follows the member). Viewers read the 'audience' entries only (state_json's viewer).
local function can_read(room, visible, user_id)
  if visible == 'all' or visible == 'audience' or user_id == room.hostId then return true end
  if type(visible) == 'table' then
    for _, id in ipairs(visible) do if id == user_id then return true end end
  end
  return false
end

local function readers(room, visible)
  if visible == 'all' or visible == 'audience' then return nil end
  local ids = {room.hostId}
  if type(visible) == 'table' then
    for _, id in ipairs(visible) do
      if id ~= room.hostId and is_member(id) then table.insert(ids, id) end
    end
  end
  return ids
end

-- {"key":{"value":...,"version":n},...}: the entries user_id may read, values verbatim
-- (viewer: user_id is a viewer of the audience, who reads the 'audience' entries only).
local function state_json(room, user_id, viewer)
  local parts = {}
  local flat = redis.call('HGETALL', STATE)
  for i = 1, #flat, 2 do
    local key, entry = flat[i], cjson.decode(flat[i + 1])
    local readable
    if viewer then readable = entry.visibleTo == 'audience' else readable = can_read(room, entry.visibleTo, user_id) end
    if readable then
      local value = redis.call('HGET', VALUES, key)
      if value then
        table.insert(parts, cjson.encode(key) .. ':{"value":' .. value .. ',"version":' .. entry.version .. '}')
      end
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- The audience (rooms created with audience = true). A viewer is admitted in AUDIENCE; its
-- sockets are counted per instance in ONLINE (each instance writes its own count: O(1) per
-- connect/disconnect, and self-repairing). The
-- count the host sees (audience:count, room.audienceCount) is published at most every
-- AUDIENCE_COUNT_MS by audience_count.lua; connect/disconnect only say when it is due.
local AUDIENCE_COUNT_MS = 1000

-- When audience_count.lua should run next: now, or a second after the last published count.
local function audience_count_due(room, now)
  return math.max(now, (tonumber(room.audienceCountAt) or 0) + AUDIENCE_COUNT_MS)
end

-- An audience key written outside touch() (a join, a connect) gets the room's remaining TTL.
local function expire_with_room(key)
  local pttl = redis.call('PTTL', ROOM)
  if pttl > 0 then redis.call('PEXPIRE', key, pttl) end
end

-- ONLINE[instance] = online, the instance's own count of its viewer sockets (the field goes at 0).
local function set_online(instance, online)
  if online > 0 then
    redis.call('HSET', ONLINE, instance, online)
    expire_with_room(ONLINE)
  else
    redis.call('HDEL', ONLINE, instance)
  end
end

-- {"audienceId", "displayName", "role": "viewer"}: the `you` of a viewer's room:state.
local function viewer_you(viewer)
  return {audienceId = viewer.id, displayName = viewer.displayName, role = 'viewer'}
end
