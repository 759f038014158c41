-- Removes a device as of a tombstone's Kafka offset, unless a later record is already applied;
-- remembers the tombstone's offset for a day.
-- KEYS: device, gone, devices, subs. ARGV: offset, id, user-devices prefix
local off = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
local removed = 0
if cur then
  local o, u = string.match(cur, '^(%-?%d+)|([^|]*)|')
  if tonumber(o) > off then return 0 end
  redis.call('SREM', ARGV[3] .. u, ARGV[2])
  redis.call('DEL', KEYS[1])
  removed = 1
end
for _, s in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('SREM', s, ARGV[2]) end
redis.call('DEL', KEYS[4])
redis.call('SREM', KEYS[3], ARGV[2])
local g = redis.call('GET', KEYS[2])
if (not g) or tonumber(g) < off then redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400) end
return removed
