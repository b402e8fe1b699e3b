-- A worker starting a coalesced predict entry claims each of its items as claim-for-run.lua
-- claims a job, all in one atomic step: an item's claim is set "running" unless a cancel came
-- first ("canceled" wins: that item must not run); a retry of the entry finds its own earlier
-- "running" claims and goes on. An item's first claim moves its record from w to i (it leaves its
-- tenant's waiting count; its input stays counted until the entry finishes). The records' and
-- counters' TTLs are refreshed once, at the end.
-- KEYS[1] records, KEYS[2] usage, KEYS[3..] the items' claims (all in the model queue's slot).
-- ARGV[1] the claims' TTL (s), ARGV[2] accounting keys' TTL (s), ARGV[3..] the items' ids, in
-- the order of their claims.
-- Returns each item's claim, 'running' or 'canceled', in order.
local claimTtl, ttl = ARGV[1], ARGV[2]
local claims, changed = {}, false
for i = 3, #KEYS do
  local id = ARGV[i]
  if redis.call('SET', KEYS[i], 'running', 'EX', claimTtl, 'NX') then
    local record = getRecord(KEYS[1], id)
    if record and record.stage == 'w' then
      setRecord(KEYS[1], KEYS[2], id, record, withStage(record, 'i'), ttl, true)
      changed = true
    end
    table.insert(claims, 'running')
  else
    table.insert(claims, redis.call('GET', KEYS[i]) or 'running')
  end
end
if changed then expireAccounting(KEYS[1], KEYS[2], ttl) end
return claims
