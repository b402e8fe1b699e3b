-- A worker starting a coalesced predict entry: its items counted in their tenants' waiting jobs
-- leave that count, all in one atomic step (record w → i; the input stays counted until the entry
-- finishes). An item not counted as waiting keeps its record at w until the finish: w and i hold
-- the same share for it, so there is nothing to move.
-- No claim key is written per item: no cancel can claim a coalesced call (the API answers 409),
-- so an item's claim could only ever read "running", and at 16 calls an entry those keys cost a
-- SET each and lived for the retention plus an hour. A retry of the entry finds the records it
-- moved at i and moves nothing twice. The records move in one batch (accounting-lib.lua).
-- KEYS[1] records, KEYS[2] usage (the model queue's slot). ARGV[1] accounting keys' TTL (s),
-- ARGV[2..] the items' ids.
-- Returns the number of records moved.
local ttl = ARGV[1]
local ids = {}
for i = 2, #ARGV do ids[i - 1] = ARGV[i] end
if #ids == 0 then return 0 end
local records = redis.call('HMGET', KEYS[1], unpack(ids))
local batch = openBatch(KEYS[1], KEYS[2])
local moved = 0
for k, id in ipairs(ids) do
  local record = not batchChanged(batch, id) and parseRecord(records[k] or nil)
  if record and record.stage == 'w' and record.w == 1 then
    batchSet(batch, id, record, withStage(record, 'i'))
    moved = moved + 1
  end
end
flushBatch(batch, ttl)
return moved
