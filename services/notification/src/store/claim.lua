-- Claims devices in an alert's ledger before they are sent, applying the daily budget and
-- counting targeted, suppressed and resent. Returns per device: 0 skip, 1 send, 2 resend,
-- 3 busy (a live run is sending it), 4 suppressed, 5 suppressed: same event.
-- One alert per news event: with ARGV[8] = '1' the story belongs to a near-duplicate cluster
-- whose event ledger (KEYS[4], device -> '<story>|<urgency>' of the alert that reached it) is
-- read in the same step: a device another story of the event already reached, at the same or a
-- more urgent level (IPTC: lower is more urgent), is suppressed as 'same_event' unless the
-- alert escalates (ARGV[11] = '1': an editor says so). A device this alert claims is written to
-- it, so two wires of one event arriving at the same instant on different partitions reach a
-- device once: the claim and the event decision are one atomic step.
-- Refuses (an error reply) when the state marker is gone: Redis lost the ledger, and nothing may
-- be claimed until it is rebuilt from notifications.receipts.
-- With ARGV[7] = '1' (a retry round), a device whose send failed (d|<v>|F|<ms>) is claimed
-- again, its answer uncounted (the new answer is counted when it comes) and the send counted
-- as resent.
-- KEYS: ledger, alert, state marker, event ledger. ARGV: run, run-key prefix, critical,
-- version, budget prefix, ttl, retry failed, event ('1'/'0'), story id, urgency, escalate,
-- then per device: id, reason ('' = send), budget limit, local day.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('NOTLOADED notification state lost from Redis; rebuilding from Kafka')
end
local run, critical, retry = ARGV[1], ARGV[3] == '1', ARGV[7] == '1'
local event, story, urgency, escalate = ARGV[8] == '1', ARGV[9], tonumber(ARGV[10]), ARGV[11] == '1'
local mine = 'p|' .. run .. '|' .. ARGV[4]
local out = {}
for i = 12, #ARGV, 4 do
  local dev, reason, limit, day = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local cur = redis.call('HGET', KEYS[1], dev)
  local code = 0
  local same_event = false
  if not cur then
    redis.call('HINCRBY', KEYS[2], 'targeted', 1)
    if reason == '' and event and not escalate then
      local covered = redis.call('HGET', KEYS[4], dev)
      if covered then
        local by, level = string.match(covered, '^(.*)|(%d+)$')
        if by ~= story and urgency >= tonumber(level) then
          reason = 'same_event'
          same_event = true
        end
      end
    end
    if reason == '' and limit > 0 then
      local used = tonumber(redis.call('HGET', ARGV[5] .. day, dev) or '0')
      if used >= limit then reason = 'budget' end
    end
    if reason ~= '' then
      redis.call('HSET', KEYS[1], dev, 's|' .. reason)
      redis.call('HINCRBY', KEYS[2], 'suppressed:' .. reason, 1)
      code = 4
      if same_event then code = 5 end
    else
      redis.call('HSET', KEYS[1], dev, mine)
      code = 1
    end
  elseif string.sub(cur, 1, 2) == 'p|' then
    local owner = string.match(cur, '^p|([^|]*)|')
    if owner ~= run then
      if redis.call('EXISTS', ARGV[2] .. owner) == 1 then
        code = 3
      else
        redis.call('HSET', KEYS[1], dev, mine)
        redis.call('HINCRBY', KEYS[2], 'resent', 1)
        code = 2
      end
    end
  elseif retry and reason == '' and string.match(cur, '^d|%d+|F|') then
    redis.call('HINCRBY', KEYS[2], 'sent', -1)
    redis.call('HINCRBY', KEYS[2], 'failed', -1)
    redis.call('HINCRBY', KEYS[2], 'resent', 1)
    redis.call('HSET', KEYS[1], dev, mine)
    code = 2
  elseif critical and reason == '' and (cur == 's|quiet_hours' or cur == 's|budget') then
    -- A critical alert reaches the devices an earlier alert of this story held back.
    redis.call('HINCRBY', KEYS[2], 'suppressed:' .. string.sub(cur, 3), -1)
    redis.call('HSET', KEYS[1], dev, mine)
    code = 1
  end
  if code == 1 and limit > 0 then
    redis.call('HINCRBY', ARGV[5] .. day, dev, 1)
    redis.call('EXPIRE', ARGV[5] .. day, 259200)
  end
  if code == 1 and event then
    redis.call('HSET', KEYS[4], dev, story .. '|' .. urgency)
  end
  out[#out + 1] = code
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
if event then redis.call('EXPIRE', KEYS[4], ARGV[6]) end
return out
