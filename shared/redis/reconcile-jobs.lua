-- The reconciler's check of some of a model's records against the jobs they stand for (one
-- atomic step per call; api/reconciler.ts walks the records with HSCAN, a slice per tick). A
-- record whose job is gone gives back what it holds (unless it is a submit younger than the
-- grace: its job may still be being added). Records of finished jobs whose finish never ran (the
-- worker died between completing the job and recording it, or its completion's reply was lost)
-- and records of results pushed out while their job is still kept are returned for the caller to
-- settle: the finish needs the job's data and may enqueue its webhook event.
-- KEYS[1] records, KEYS[2] usage, KEYS[3] retained results (ZSET), KEYS[4..] the jobs' hashes,
-- in the order of their ids. ARGV[1] now (ms), ARGV[2] grace (ms), ARGV[3] TTL (s), ARGV[4..] ids.
-- Returns {released, {ids to finish}, {ids to remove}}.
local now, grace, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local released, toFinish, toRemove = 0, {}, {}
for i = 4, #ARGV do
  local id, jobKey = ARGV[i], KEYS[i]
  local record = getRecord(KEYS[1], id)
  if record then
    if redis.call('EXISTS', jobKey) == 0 then
      if not (record.stage == 'w' and now - record.created < grace) then
        if record.stage == 'r' then redis.call('ZREM', KEYS[3], retainedMember(id, record)) end
        setRecord(KEYS[1], KEYS[2], id, record, nil, ttl)
        released = released + 1
      end
    elseif (record.stage == 'w' or record.stage == 'i') and redis.call('HEXISTS', jobKey, 'finishedOn') == 1 then
      table.insert(toFinish, id)
    elseif record.stage == 'x' then
      table.insert(toRemove, id)
    end
  end
end
return { released, toFinish, toRemove }
