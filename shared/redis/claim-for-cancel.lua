-- A cancel claims the job "canceled" unless a worker is running it right now.
-- A "running" claim only stands while a worker holds the job's lock: one left by an earlier
-- attempt (a retry waiting in the queue, or a dead worker's job) no longer does.
-- A job never claimed before leaves its tenant's waiting count (never below 0), and a canceled
-- job's input leaves its tenant's stored bytes here (finish-job.lua skips canceled jobs).
-- KEYS[1] the job's claim key, KEYS[2] BullMQ's lock of the job, KEYS[3] the tenant's waiting
-- count, KEYS[4] the tenant's stored bytes (all in the queue's hash slot); ARGV[1] the claim's
-- TTL, seconds; ARGV[2] the job's input bytes counted at submit (0: not counted); ARGV[3] the
-- stored-bytes key's TTL, seconds.
local claim = redis.call('GET', KEYS[1])
if claim == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then return 'running' end
if claim == 'canceled' then return 'canceled' end
if not claim and tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
local inputBytes = tonumber(ARGV[2] or '0')
if inputBytes > 0 then
  if redis.call('DECRBY', KEYS[4], inputBytes) <= 0 then redis.call('DEL', KEYS[4]) else redis.call('EXPIRE', KEYS[4], ARGV[3]) end
end
redis.call('SET', KEYS[1], 'canceled', 'EX', ARGV[1])
return 'canceled'
