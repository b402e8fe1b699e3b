-- A cancel claims the job "canceled" unless a worker is running it right now.
-- A "running" claim only stands while a worker holds the job's lock: one left by an earlier
-- attempt (a retry waiting in the queue, or a dead worker's job) no longer does.
-- KEYS[1] the job's claim key, KEYS[2] BullMQ's lock of the job (same hash slot);
-- ARGV[1] the claim's TTL, seconds.
local claim = redis.call('GET', KEYS[1])
if claim == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then return 'running' end
redis.call('SET', KEYS[1], 'canceled', 'EX', ARGV[1])
return 'canceled'
