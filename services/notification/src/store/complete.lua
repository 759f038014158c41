-- Records the answers of sends claimed by a run: d|<version>|<D,F,G>|<ms> in the ledger, the
-- counts, the first send and the timeline. Entries no longer claimed by the run are left alone.
-- KEYS: ledger, alert, timeline. ARGV: run, version, bucket ms, ttl, then per device: id, D/F/G, ms.
local prefix = 'p|' .. ARGV[1] .. '|'
local started = tonumber(redis.call('HGET', KEYS[2], 'started_ms') or '0')
local first = tonumber(redis.call('HGET', KEYS[2], 'first_sent_ms') or '0')
local bucket = tonumber(ARGV[3])
local n = {D = 0, F = 0, G = 0}
local sent = 0
for i = 5, #ARGV, 3 do
  local dev, o, ms = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], dev)
  if cur and string.sub(cur, 1, #prefix) == prefix then
    redis.call('HSET', KEYS[1], dev, 'd|' .. ARGV[2] .. '|' .. o .. '|' .. ms)
    n[o] = n[o] + 1
    sent = sent + 1
    if first == 0 or ms < first then first = ms end
    local b = math.max(0, math.floor((ms - started) / bucket) * bucket)
    redis.call('HINCRBY', KEYS[3], b, 1)
  end
end
if sent > 0 then
  redis.call('HINCRBY', KEYS[2], 'sent', sent)
  redis.call('HINCRBY', KEYS[2], 'delivered', n.D)
  redis.call('HINCRBY', KEYS[2], 'failed', n.F + n.G)
  redis.call('HINCRBY', KEYS[2], 'gone', n.G)
  redis.call('HSET', KEYS[2], 'first_sent_ms', first)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
return sent
