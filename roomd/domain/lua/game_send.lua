-- ARGV: code, sender_id, to JSON ("host" | "all" | "others" | "audience" | [ids]), type, data JSON,
--       ttl_ms, now
-- Relays a game message: the host may send to anyone; a player only to the host unless
-- the room's playerMessages is 'all'. Unknown ids in `to`: MEMBER_NOT_FOUND, nothing sent.
-- "audience": the host only (NOT_ALLOWED), to every viewer of the room's audience and no
-- member (aud 2; AUDIENCE_DISABLED in a room created without one).
-- Returns the seq of the game:message.
local code, sender, to_json, kind, data_json = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl, now = tonumber(ARGV[6]), tonumber(ARGV[7])
local room = load_room()
if room.err then return room end
if not is_member(sender) then return redis.error_reply('MEMBER_NOT_FOUND') end
local to = cjson.decode(to_json)
if to ~= 'host' and room.hostId ~= sender and room.playerMessages ~= 'all' then
  return redis.error_reply('NOT_ALLOWED')
end
if to == 'audience' then
  if room.hostId ~= sender then return redis.error_reply('NOT_ALLOWED') end
  if not room.audience then return redis.error_reply('AUDIENCE_DISABLED') end
end
local meta
if to == 'audience' then
  meta = {aud = 2}
elseif to == 'host' then
  meta = {to = {room.hostId}}
elseif to == 'all' then
  meta = {}
elseif to == 'others' then
  meta = {skip = sender}
else
  for _, id in ipairs(to) do
    if not is_member(id) then return redis.error_reply('MEMBER_NOT_FOUND') end
  end
  meta = {to = to}
end
local seq = publish_raw(room, 'game:message',
  '{"from":' .. cjson.encode(sender) .. ',"type":' .. cjson.encode(kind) .. ',"data":' .. data_json .. '}', meta)
touch(room, ttl, now)
return reply(seq)
