-- A worker starting a job claims it "running" unless a cancel came first; a retry finds its own
-- earlier "running" claim and goes on. The first claim moves the job's record from w to i: it
-- leaves its tenant's waiting count (its input stays counted until it finishes).
-- KEYS[1] the job's claim, KEYS[2] records, KEYS[3] usage. ARGV[1] the claim's TTL (s),
-- ARGV[2] job id, ARGV[3] accounting keys' TTL (s).
if redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1], 'NX') then
  local record = getRecord(KEYS[2], ARGV[2])
  if record and record.stage == 'w' then setRecord(KEYS[2], KEYS[3], ARGV[2], record, withStage(record, 'i'), ARGV[3]) end
  return 'running'
end
return redis.call('GET', KEYS[1]) or 'running'
