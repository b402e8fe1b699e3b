-- A job that is gone, or will never be: whatever its record holds leaves the counts, and the
-- record and its retained-result entry go. Used after a DELETE has removed the job, when an add
-- surely failed, and by the reconciler for records whose job no longer exists. Idempotent.
-- KEYS[1] records, KEYS[2] usage, KEYS[3] the retained set the id's result is in (keys.ts: the
-- jobs', or the coalesced calls'). ARGV[1] job id, ARGV[2] TTL (s).
-- Returns the bytes that left the tenant's stored bytes.
local id = ARGV[1]
local record = getRecord(KEYS[1], id)
if not record then return 0 end
if record.stage == 'r' then redis.call('ZREM', KEYS[3], retainedMember(id, record)) end
setRecord(KEYS[1], KEYS[2], id, record, nil, ARGV[2])
if record.stage == 'w' or record.stage == 'i' then return record.input end
if record.stage == 'r' then return record.result end
return 0
