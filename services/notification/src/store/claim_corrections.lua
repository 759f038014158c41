-- Claims devices for a correction to a version, or a retraction (the highest version there is,
-- so nothing follows it): 1 for those not yet sent it (counted), else 0.
-- KEYS: corrected, alert. ARGV: version, ttl, counter field, devices...
local v = tonumber(ARGV[1])
local out = {}
for i = 4, #ARGV do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if cur < v then
    redis.call('HSET', KEYS[1], ARGV[i], v)
    redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
