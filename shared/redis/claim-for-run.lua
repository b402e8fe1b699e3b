-- A worker starting a job claims it "running" unless a cancel came first.
-- A retry finds its own earlier "running" claim and goes on.
-- The first claim takes the job off its tenant's waiting count (never below 0: jobs queued by
-- a release without counts were never added to it).
-- KEYS[1] the job's claim key, KEYS[2] its tenant's waiting count; ARGV[1] the claim's TTL, s.
if redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1], 'NX') then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
  return 'running'
end
return redis.call('GET', KEYS[1]) or 'running'
