-- A finished job gives up its input: its data field is replaced by the same payload without it.
-- Only while the job still exists: a plain HSET on a job already removed by retention would
-- leave a stray hash with no TTL.
-- KEYS[1] the job's hash (BullMQ's <prefix>:<queue>:<id>); ARGV[1] the new data (JSON).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1])
return 1
