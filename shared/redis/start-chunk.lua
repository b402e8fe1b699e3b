-- A worker starting a batch chunk. 'canceled' when the batch was canceled first; otherwise the
-- start is recorded once (a retried chunk is not counted running twice) and 'run' is returned.
-- KEYS[1] the batch's counts hash, KEYS[2] its started hash.
-- ARGV[1] chunk number, ARGV[2] items in the chunk, ARGV[3] now (ms), ARGV[4] TTL (s).
if redis.call('HEXISTS', KEYS[1], 'canceled_at') == 1 then return 'canceled' end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'running', ARGV[2])
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 'run'
