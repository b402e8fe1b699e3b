-- A cancel claims the job "canceled" unless it is finished, gone, or a worker is running it now,
-- all judged in this one atomic step (the job's hash, its lock and its claim share the queue's
-- hash slot). A "running" claim only stands while a worker holds the job's lock: one left by an
-- earlier attempt (a retry waiting, a dead or stopped worker's job) does not. A worker that lost
-- its lock can never finish the job (BullMQ's moveToFinished checks the lock token), and one that
-- fetches it later finds the claim, so a job canceled here never completes.
-- The cancel moves the job's record to c: what it held leaves its tenant's counts.
-- KEYS[1] the job's claim, KEYS[2] BullMQ's lock of the job, KEYS[3] the job's hash,
-- KEYS[4] records, KEYS[5] usage. ARGV[1] the claim's TTL (s), ARGV[2] job id,
-- ARGV[3] accounting keys' TTL (s), ARGV[4] the claim written: 'canceled', or 'expired' for a job
-- that had failed by its deadline while queued (a worker that fetched it fails it with the
-- deadline's error, as its readers were told; absent: 'canceled').
-- Returns the claim now held ('canceled' or 'expired'), 'running', 'finished' or 'gone'.
local claim = redis.call('GET', KEYS[1])
if claim == 'canceled' or claim == 'expired' then return claim end
local taken = ARGV[4] or 'canceled'
if redis.call('EXISTS', KEYS[3]) == 0 then return 'gone' end
if redis.call('HEXISTS', KEYS[3], 'finishedOn') == 1 then return 'finished' end
if claim == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then return 'running' end
redis.call('SET', KEYS[1], taken, 'EX', ARGV[1])
local record = getRecord(KEYS[4], ARGV[2])
if record and (record.stage == 'w' or record.stage == 'i') then
  setRecord(KEYS[4], KEYS[5], ARGV[2], record, withStage(record, 'c'), ARGV[3])
end
return taken
