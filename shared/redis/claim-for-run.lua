-- A worker starting a job claims it "running" unless a cancel came first.
-- A retry finds its own earlier "running" claim and goes on.
-- KEYS[1] the job's claim key; ARGV[1] the claim's TTL, seconds.
if redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1], 'NX') then return 'running' end
return redis.call('GET', KEYS[1]) or 'running'
