-- A worker starting a coalesced predict entry claims each of its items as claim-for-run.lua
-- claims a job, all in one atomic step: an item's claim is set "running" unless a cancel came
-- first ("canceled" wins: that item must not run); a retry of the entry finds its own earlier
-- "running" claims and goes on. An item's first claim moves its record from w to i (it leaves its
-- tenant's waiting count; its input stays counted until the entry finishes). The records move
-- in one batch (accounting-lib.lua), written once at the end.
-- KEYS[1] records, KEYS[2] usage, KEYS[3..] the items' claims (all in the model queue's slot).
-- ARGV[1] the claims' TTL (s), ARGV[2] accounting keys' TTL (s), ARGV[3..] the items' ids, in
-- the order of their claims.
-- Returns each item's claim, 'running' or 'canceled', in order.
local claimTtl, ttl = ARGV[1], ARGV[2]
local claims, claimed = {}, {}
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], 'running', 'EX', claimTtl, 'NX') then
    table.insert(claims, 'running')
    table.insert(claimed, ARGV[i])
  else
    table.insert(claims, redis.call('GET', KEYS[i]) or 'running')
  end
end
-- The records of the items claimed just now, read in one command.
if #claimed > 0 then
  local records = redis.call('HMGET', KEYS[1], unpack(claimed))
  local batch = openBatch(KEYS[1], KEYS[2])
  for k, id in ipairs(claimed) do
    local record = parseRecord(records[k] or nil)
    if record and record.stage == 'w' then batchSet(batch, id, record, withStage(record, 'i')) end
  end
  flushBatch(batch, ttl)
end
return claims
