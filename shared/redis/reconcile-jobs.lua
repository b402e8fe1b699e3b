-- The reconciler's check of some of a model's records against the jobs they stand for (one
-- atomic step per call; api/reconciler.ts walks the records with HSCAN, a slice per tick). A
-- record whose job is gone gives back what it holds (unless it is a submit younger than the
-- grace: its job may still be being added). Records of finished jobs whose finish never ran (the
-- worker died between completing the job and recording it, or its completion's reply was lost)
-- and records of results pushed out while their job is still kept are returned for the caller to
-- settle: the finish needs the job's data and may enqueue its webhook event.
-- KEYS[1] records, KEYS[2] usage, KEYS[3] the jobs' retained results, KEYS[4] the coalesced
-- calls' (keys.ts), KEYS[5..] the jobs' hashes, in the order of their ids. ARGV[1] now (ms),
-- ARGV[2] grace (ms), ARGV[3] TTL (s), ARGV[4..] ids.
-- Returns {released, {ids to finish}, {ids to remove}}.
-- The pass runs over every record every period, idle or not, so its cost per record is what an
-- idle hub costs Redis: the records are read with one HMGET, a job hash's existence is asked once
-- (a coalesced entry's items share theirs) and the releases move in one batch (accounting-lib.lua).
local now, grace, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local released, toFinish, toRemove = 0, {}, {}
local ids = {}
for i = 4, #ARGV do ids[i - 3] = ARGV[i] end
if #ids == 0 then return { 0, {}, {} } end
local raw = redis.call('HMGET', KEYS[1], unpack(ids))
local batch = openBatch(KEYS[1], KEYS[2])
local exists, members, callMembers = {}, {}, {}
for k, id in ipairs(ids) do
  -- An id given twice (HSCAN may return one twice) is checked once.
  local text = not batchChanged(batch, id) and raw[k]
  if text then
    local jobKey = KEYS[k + 4]
    local there = exists[jobKey]
    if there == nil then
      there = redis.call('EXISTS', jobKey) == 1
      exists[jobKey] = there
    end
    -- Most records are of kept jobs and need only their stage: the rest is parsed only when used.
    local stage = string.sub(text, 1, 1)
    if not there then
      local record = parseRecord(text)
      if record and not (record.stage == 'w' and now - record.created < grace) then
        if record.stage == 'r' then
          table.insert(isItemId(id) and callMembers or members, retainedMember(id, record))
        end
        batchSet(batch, id, record, nil)
        released = released + 1
      end
    elseif (stage == 'w' or stage == 'i') and redis.call('HEXISTS', jobKey, 'finishedOn') == 1 then
      table.insert(toFinish, id)
    elseif stage == 'x' then
      table.insert(toRemove, id)
    end
  end
end
callInPieces('ZREM', KEYS[3], members)
callInPieces('ZREM', KEYS[4], callMembers)
flushBatch(batch, ttl)
return { released, toFinish, toRemove }
