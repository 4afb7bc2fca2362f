-- ARGV: code, actor_id ('' = administrator), key, value JSON, visibleTo JSON or '', writableBy JSON or '',
--       ifVersion or '', max_keys, max_bytes, ttl_ms, now
-- Creates or changes a shared state entry. Only the host (or an administrator) creates
-- entries and sets their rules; another member may change the value of an entry it may
-- write. The new version is the seq of the state:changed, published to the entry's
-- readers only; members who could read it before a visibility change but no longer can
-- get a state:deleted first. visibleTo 'audience': every member and every viewer of the
-- room's audience (state:changed with aud 1); an entry that leaves 'audience' is deleted for
-- the viewers (state:deleted, aud 2). Returns the seq of the state:changed.
local code, actor, key, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local visible_arg, writable_arg, if_version = ARGV[5], ARGV[6], ARGV[7]
local max_keys, max_bytes = tonumber(ARGV[8]), tonumber(ARGV[9])
local ttl, now = tonumber(ARGV[10]), tonumber(ARGV[11])
local room = load_room()
if room.err then return room end
local is_host = actor == ''
if not is_host then
  if not is_member(actor) then return redis.error_reply('MEMBER_NOT_FOUND') end
  is_host = room.hostId == actor
end
local raw = redis.call('HGET', STATE, key)
local entry = raw and cjson.decode(raw) or nil
if not is_host then
  if not entry or visible_arg ~= '' or writable_arg ~= '' then return redis.error_reply('NOT_ALLOWED') end
  local writable = entry.writableBy
  local allowed = writable == 'all'
  if type(writable) == 'table' then
    for _, id in ipairs(writable) do if id == actor then allowed = true end end
  end
  if not allowed then return redis.error_reply('NOT_ALLOWED') end
end
local current = entry and entry.version or 0
if if_version ~= '' and tonumber(if_version) ~= current then
  return redis.error_reply('VERSION_CONFLICT {"version":' .. current .. '}')
end
local visible = entry and entry.visibleTo or 'all'
local writable = entry and entry.writableBy or 'host'
for _, arg in ipairs({visible_arg, writable_arg}) do
  if arg ~= '' then
    local rule = cjson.decode(arg)
    if type(rule) == 'table' then
      for _, id in ipairs(rule) do
        if not is_member(id) then return redis.error_reply('MEMBER_NOT_FOUND') end
      end
    end
  end
end
if visible_arg ~= '' then visible = cjson.decode(visible_arg) end
if writable_arg ~= '' then writable = cjson.decode(writable_arg) end
local old_size = entry and entry.size or 0
local count = redis.call('HLEN', STATE) + (entry and 0 or 1)
local bytes = (room.stateBytes or 0) - old_size + #value
if count > max_keys or bytes > max_bytes then return redis.error_reply('STATE_TOO_LARGE') end
local by = actor == '' and 'ADMIN' or actor
local new_readers = readers(room, visible)
if entry and new_readers then
  -- Members who could read the entry and no longer can: their copy goes.
  local lost = {}
  for _, id in ipairs(redis.call('HKEYS', USERS)) do
    if can_read(room, entry.visibleTo, id) and not can_read(room, visible, id) then table.insert(lost, id) end
  end
  if #lost > 0 then
    publish(room, 'state:deleted', {key = key, version = room.seq + 1, by = by}, {to = lost})
  end
end
if entry and entry.visibleTo == 'audience' and visible ~= 'audience' then
  publish(room, 'state:deleted', {key = key, version = room.seq + 1, by = by}, {aud = 2})
end
local version = room.seq + 1
redis.call('HSET', STATE, key, cjson.encode({version = version, visibleTo = visible,
                                                        writableBy = writable, size = #value}))
redis.call('HSET', VALUES, key, value)
room.stateBytes = bytes
publish_raw(room, 'state:changed', '{"key":' .. cjson.encode(key) .. ',"value":' .. value ..
            ',"version":' .. version .. ',"by":' .. cjson.encode(by) .. '}',
            {to = new_readers, aud = visible == 'audience' and 1 or nil})
touch(room, ttl, now)
return reply(room.seq)
