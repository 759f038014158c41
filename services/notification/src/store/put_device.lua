-- Stores a device as of a Kafka offset, unless a later record (or tombstone) is already applied;
-- moves it between users and replaces its preference subscriptions.
-- KEYS: device, gone, devices, subs. ARGV: offset, id, user, value, user-devices prefix, new subs...
local off = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  local o, u = string.match(cur, '^(%-?%d+)|([^|]*)|')
  if tonumber(o) > off then return 0 end
  if u ~= ARGV[3] then redis.call('SREM', ARGV[5] .. u, ARGV[2]) end
else
  local g = redis.call('GET', KEYS[2])
  if g and tonumber(g) > off then return 0 end
end
for _, s in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('SREM', s, ARGV[2]) end
redis.call('DEL', KEYS[4])
for i = 6, #ARGV do
  redis.call('SADD', ARGV[i], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', ARGV[5] .. ARGV[3], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
