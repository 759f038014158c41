-- A dry run of claim.lua: what claiming these devices would decide now, writing nothing.
-- Returns per device: 0 already handled for this story, 1 would be sent, 4 suppressed (the
-- reason given, or the day's budget spent), 5 suppressed: same event.
-- KEYS: ledger, event ledger. ARGV: event ('1'/'0'), story id, urgency, escalate, budget
-- prefix, then per device: id, reason ('' = send), budget limit, local day.
local event, story, urgency, escalate = ARGV[1] == '1', ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local out = {}
for i = 6, #ARGV, 4 do
  local dev, reason, limit, day = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local code = 0
  if not redis.call('HGET', KEYS[1], dev) then
    if reason == '' and event and not escalate then
      local covered = redis.call('HGET', KEYS[2], dev)
      if covered then
        local by, level = string.match(covered, '^(.*)|(%d+)$')
        if by ~= story and urgency >= tonumber(level) then code = 5 end
      end
    end
    if code == 0 then
      if reason == '' and limit > 0 then
        local used = tonumber(redis.call('HGET', ARGV[5] .. day, dev) or '0')
        if used >= limit then reason = 'budget' end
      end
      if reason ~= '' then code = 4 else code = 1 end
    end
  end
  out[#out + 1] = code
end
return out
