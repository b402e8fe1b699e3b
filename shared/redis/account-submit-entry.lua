-- The calls of one coalesced predict entry about to be queued (shared/predict/entry.ts): each
-- item decided and recorded exactly as account-submit.lua would decide and record it, called
-- once per item in the entry's order, but in one atomic step: an item's counts are its tenant's
-- after the items before it, so a tenant that reaches a quota mid-entry has its later items
-- refused, while other tenants' items in the same entry still pass. A resent call finds its
-- records and changes nothing. The records move in one batch (accounting-lib.lua), written once
-- at the end: one HINCRBY per counter field, one HSET of records, one TTL refresh.
-- KEYS[1] records, KEYS[2] usage (accounting-lib.lua). ARGV[1] now (ms), ARGV[2] keys' TTL (s),
-- then per item, 6 each: its id, tenant ('-'), whether it counts as waiting (0/1), input bytes
-- counted (0: none), its tenant's waiting limit (0: none), stored-bytes limit (0: none).
-- Returns per item {verdict, waiting, stored}, as account-submit.lua: 'ok' (counted), 'waiting'
-- or 'stored' (that quota is reached: nothing counted); the counts are its tenant's before it.
local now, ttl = tonumber(ARGV[1]), ARGV[2]
local ids = {}
for i = 3, #ARGV, 6 do table.insert(ids, ARGV[i]) end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local batch = openBatch(KEYS[1], KEYS[2])
-- A tenant's counts, read once and then moved as this script's own records move them (a new
-- record at w adds its waiting flag and its input: applyRecord), so each item sees them as a
-- separate account-submit.lua would.
local counts = {}
local function countsOf(tenant)
  local c = counts[tenant]
  if not c then
    local w, s = unpack(redis.call('HMGET', KEYS[2], 'w|' .. tenant, 's|' .. tenant))
    c = { waiting = batchCounter(batch, 'w|' .. tenant, w), stored = batchCounter(batch, 's|' .. tenant, s) }
    counts[tenant] = c
  end
  return c
end
-- An id with a record (a resent call, or an id given twice) is counted once.
local recorded = {}
for k, id in ipairs(ids) do recorded[id] = parseRecord(existing[k] or nil) ~= nil end
local out = {}
for k, id in ipairs(ids) do
  local i = 3 + (k - 1) * 6
  local tenant = ARGV[i + 1]
  local counted, input = ARGV[i + 2] == '1', tonumber(ARGV[i + 3])
  local maxWaiting, maxStored = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local c = countsOf(tenant)
  local verdict = 'ok'
  if recorded[id] then
    verdict = 'ok'
  elseif counted and maxWaiting > 0 and c.waiting + 1 > maxWaiting then
    verdict = 'waiting'
  elseif input > 0 and maxStored > 0 and c.stored >= maxStored then
    verdict = 'stored'
  end
  table.insert(out, { verdict, c.waiting, c.stored })
  if verdict == 'ok' and not recorded[id] then
    local record = { stage = 'w', w = counted and 1 or 0, input = input, result = 0, created = now, tenant = tenant }
    batchSet(batch, id, nil, record)
    recorded[id] = true
    c.waiting = c.waiting + record.w
    c.stored = c.stored + input
  end
end
flushBatch(batch, ttl)
return out
