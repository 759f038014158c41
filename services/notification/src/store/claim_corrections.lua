-- Claims devices for a correction to a version: 1 for those not yet sent it (counted), else 0.
-- KEYS: corrected, alert. ARGV: version, ttl, devices...
local v = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if cur < v then
    redis.call('HSET', KEYS[1], ARGV[i], v)
    redis.call('HINCRBY', KEYS[2], 'corrected', 1)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
