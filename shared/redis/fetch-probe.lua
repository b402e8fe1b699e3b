-- Whether a queue may hold a job to fetch, asked by a worker right after a fetch that got one
-- (worker/probing-worker.ts): BullMQ's fetch adds the queue's wake-up marker back every time it
-- takes a job, so without this the worker would run its full fetch script on an empty queue, be
-- woken by its own marker, and run it again, twice per job. When nothing is waiting, delayed or
-- prioritized, the base marker ("0", which only ever means "a job may be waiting") goes, in the
-- same atomic step as the check: a job added after it puts the marker back and wakes the worker,
-- one added before it is seen here. Delayed jobs' markers (other members, scored by when) stay.
-- KEYS[1] wait (LIST), KEYS[2] prioritized (ZSET), KEYS[3] delayed (ZSET), KEYS[4] marker (ZSET).
-- Returns 1 (fetch) or 0 (nothing to fetch; block on the marker).
if redis.call('LLEN', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 or redis.call('ZCARD', KEYS[3]) > 0 then
  return 1
end
redis.call('ZREM', KEYS[4], '0')
return 0
