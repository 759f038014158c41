-- Ends a fan-out run; marks the story finished (finished_ms) when no other run of it is alive.
-- KEYS: runs of the story, alert hash. ARGV: run, now ms, run key prefix.
redis.call('SREM', KEYS[1], ARGV[1])
local alive = 0
for _, r in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[3] .. r) == 1 then
    alive = alive + 1
  else
    redis.call('SREM', KEYS[1], r)
  end
end
if alive == 0 then
  redis.call('HSET', KEYS[2], 'finished_ms', ARGV[2])
end
return alive
