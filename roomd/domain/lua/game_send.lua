-- ARGV: code, sender_id, to JSON ("host" | "all" | "others" | [ids]), type, data JSON, ttl_ms, now
-- Relays a game message: the host may send to anyone; a player only to the host unless
-- the room's playerMessages is 'all'. Unknown ids in `to`: MEMBER_NOT_FOUND, nothing sent.
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
local meta
if to == 'host' then
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
