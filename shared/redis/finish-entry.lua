-- A finished predict entry (completed, or failed for good): each of its items gives up its input,
-- and an item that answered keeps its result in its tenant's stored bytes and the model's retained
-- results (record → r, bounded by retention like a job's); an item that failed, or a failed entry,
-- leaves no record. Run by the worker whose finish BullMQ recorded, or by the reconciler when that
-- worker died first; a second run changes nothing (the entry's `accounted` mark, below).
-- The entry's anonymous calls with no share (counted nowhere but the model's retained bytes)
-- answer as one record, "<entry>.a", holding their results' bytes: one record and one retained
-- member per entry instead of one per call, which was most of this script's work (issue 22).
-- A call with a tenant, or with a share, keeps a record of its own: its bytes are its tenant's,
-- and a DELETE gives them back one call at a time.
-- An entry already gone (removed by retention) gives back what its items' records held.
-- KEYS[1] the entry's hash, KEYS[2] records, KEYS[3] usage, KEYS[4] the coalesced calls' retained
-- results (keys.ts `retainedCalls`: a job's are never pushed out by them), KEYS[5] the
-- entry's inputs (payload v2; absent for v1, and deleted either way: a finished entry runs no more),
-- KEYS[6] the model queue's completed set (jobs retention pushes out leave it, with their hashes).
-- One slot.
-- ARGV[1] the entry's data without its inputs (JSON; '' for a v2 entry, whose data holds none:
-- only the mark is written), ARGV[2] now (ms), ARGV[3] retention age (ms), ARGV[4] retention count,
-- ARGV[5] retention bytes (0: no bound), ARGV[6] TTL (s), then per item: its id, its tenant ('-'),
-- its result bytes (0: no result).
-- Returns the ids of older results the byte bound pushed out (gone already: pushOutRetained).
-- The items' records and the push-out move in one batch (accounting-lib.lua), written once at
-- the end: one HINCRBY per counter field, one HSET and one HDEL of records, one TTL refresh.
local ttl, now = ARGV[6], tonumber(ARGV[2])
redis.call('DEL', KEYS[5])
local batch = openBatch(KEYS[2], KEYS[3])
-- The items' records, read in one command before any changes (an entry's item ids are unique).
local ids = {}
for i = 7, #ARGV, 3 do table.insert(ids, ARGV[i]) end
-- The anonymous calls' record, read with the items' (an entry's item ids are "<entry>.p<k>").
local anonymousId = #ids > 0 and anonymousCallsId(ids[1]) or nil
if anonymousId then table.insert(ids, anonymousId) end
local records = {}
if #ids > 0 then
  local raw = redis.call('HMGET', KEYS[2], unpack(ids))
  for k, id in ipairs(ids) do records[id] = parseRecord(raw[k] or nil) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local members = {}
  for _, id in ipairs(ids) do
    local record = records[id]
    if record then
      if record.stage == 'r' then table.insert(members, retainedMember(id, record)) end
      batchSet(batch, id, record, nil)
    end
  end
  callInPieces('ZREM', KEYS[4], members)
  flushBatch(batch, ttl)
  return {}
end
-- A record that stands for calls without counting anything (at w or i, nothing counted): the
-- submit's first call without a share, an earlier API's record of every call, or the anonymous
-- calls' record the submit wrote (JobAccounting.recordAnonymousCalls).
local function holdsNothing(record)
  return (record.stage == 'w' or record.stage == 'i') and record.w == 0 and record.input == 0
end
-- An entry's items are settled once. A second run (a resent call, the reconciler racing the
-- worker) finds the entry's marker and changes nothing: the items' records cannot tell it, since
-- retention drops a call's record when it pushes its result out (accounting-lib.lua).
if redis.call('HEXISTS', KEYS[1], 'accounted') == 1 then
  -- Settled by an earlier release's worker, which knows no anonymous calls' record: the one this
  -- entry's submit wrote counts nothing and would come back from every reconciliation, so it goes.
  local stale = anonymousId and records[anonymousId]
  if stale and holdsNothing(stale) then
    batchSet(batch, anonymousId, stale, nil)
    flushBatch(batch, ttl)
  end
  return {}
end
if ARGV[1] == '' then
  redis.call('HSET', KEYS[1], 'accounted', '1')
else
  redis.call('HSET', KEYS[1], 'data', ARGV[1], 'accounted', '1')
end
local finished, retained = {}, {}
-- An anonymous call joins the anonymous calls' record when its own record, if any, holds nothing;
-- one that counts a share keeps its own. The anonymous calls' record, if the submit wrote it,
-- stands for the entry's calls until this settles them.
local anonymousBytes = 0
local anonymousRecord = anonymousId and records[anonymousId] or nil
local anonymousOpen = anonymousId ~= nil and (anonymousRecord == nil or holdsNothing(anonymousRecord))
for i = 7, #ARGV, 3 do
  local id, tenant, resultBytes = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local record = records[id]
  if not (record and (record.stage == 'r' or record.stage == 'x' or record.stage == 'c')) then
    -- (Here a record is at w or i: finished ones were skipped above.)
    local joins = anonymousOpen and tenant == '-' and anonymousCallsId(id) == anonymousId
    if joins and (record == nil or holdsNothing(record)) then
      if record then batchSet(batch, id, record, nil) end
      anonymousBytes = anonymousBytes + resultBytes
    elseif resultBytes == 0 then
      if record then batchSet(batch, id, record, nil) end
    else
      local before = record or { stage = 'i', w = 0, input = 0, result = 0, created = now, tenant = tenant }
      local done = withStage(before, 'r', resultBytes)
      batchSet(batch, id, record, done)
      table.insert(retained, now)
      table.insert(retained, retainedMember(id, done))
      finished[id] = true
    end
  end
end
if anonymousOpen and anonymousBytes > 0 then
  local done = { stage = 'r', w = 0, input = 0, result = anonymousBytes, created = now, tenant = '-' }
  batchSet(batch, anonymousId, anonymousRecord, done)
  table.insert(retained, now)
  table.insert(retained, retainedMember(anonymousId, done))
  finished[anonymousId] = true
elseif anonymousOpen and anonymousRecord then
  batchSet(batch, anonymousId, anonymousRecord, nil)
end
if #retained > 0 then
  callInPieces('ZADD', KEYS[4], retained)
  redis.call('EXPIRE', KEYS[4], ttl)
end
local pushedOut = pushOutRetained(batch, KEYS[4], KEYS[6], now, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  function(headId) return finished[headId] == true end)
flushBatch(batch, ttl)
return pushedOut
