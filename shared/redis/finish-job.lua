-- A finished job (completed, or failed for good) gives up its input, and its result joins the
-- model's retained results, bounded like BullMQ bounds the completed set (age, count) and also
-- by bytes. Its record moves to r (a result of 0 bytes: the record goes), so its tenant's stored
-- bytes swap its input for its result. Run by the worker that finished the job, or by the
-- reconciler when that worker died first; a second run changes nothing. A job deleted (or
-- removed by retention) before this runs gives back what its record held.
-- KEYS[1] the job's hash, KEYS[2] records, KEYS[3] usage, KEYS[4] retained results (ZSET
-- "<id>|<bytes>|<tenant>" → finished at, ms), KEYS[5] the model queue's completed set (the jobs
-- retention pushes out leave it, with their hashes). All in the queue's hash slot.
-- ARGV[1] job id, ARGV[2] the job's data without its input (JSON), ARGV[3] its tenant ('-'),
-- ARGV[4] now (ms), ARGV[5] retention age (ms), ARGV[6] retention count, ARGV[7] retention bytes
-- (0: no bound), ARGV[8] accounting keys' TTL (s).
-- Returns the ids of older jobs the byte bound pushed out (removed already, with those past the age
-- or count bound: accounting-lib.lua's pushOutRetained).
local id, ttl = ARGV[1], ARGV[8]
local record = getRecord(KEYS[2], id)
if redis.call('EXISTS', KEYS[1]) == 0 then
  if record then
    if record.stage == 'r' then redis.call('ZREM', KEYS[4], retainedMember(id, record)) end
    setRecord(KEYS[2], KEYS[3], id, record, nil, ttl)
  end
  return {}
end
if record and (record.stage == 'r' or record.stage == 'x') then return {} end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
-- A canceled job (failed unrun by the worker that fetched it) gave its share back at the cancel.
if record and record.stage == 'c' then return {} end
local resultBytes = redis.call('HSTRLEN', KEYS[1], 'returnvalue')
local now = tonumber(ARGV[4])
if resultBytes == 0 then
  if record then setRecord(KEYS[2], KEYS[3], id, record, nil, ttl) end
  return {}
end
local before = record or { stage = 'i', w = 0, input = 0, result = 0, created = now, tenant = ARGV[3] }
local finished = withStage(before, 'r', resultBytes)
-- A job without a record (queued by a release without records, or counted nowhere) had no share.
-- Its record and retention's push-out move in one batch, written once (accounting-lib.lua).
local batch = openBatch(KEYS[2], KEYS[3])
batchSet(batch, id, record, finished)
redis.call('ZADD', KEYS[4], now, retainedMember(id, finished))
redis.call('EXPIRE', KEYS[4], ttl)
local pushedOut = pushOutRetained(batch, KEYS[4], KEYS[5], now, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  function(headId) return headId == id end)
flushBatch(batch, ttl)
return pushedOut
