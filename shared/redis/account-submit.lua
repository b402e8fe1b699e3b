-- A job about to be queued: its record (stage w) and its share of its tenant's counts, unless a
-- quota is already reached, checked and counted in one step so two submits cannot both pass.
-- A resent call finds its record and changes nothing.
-- KEYS[1] records, KEYS[2] usage (accounting-lib.lua). ARGV[1] job id, ARGV[2] tenant ('-'),
-- ARGV[3] whether it counts as waiting (0/1), ARGV[4] input bytes counted (0: none),
-- ARGV[5] waiting limit (0: none), ARGV[6] stored-bytes limit (0: none), ARGV[7] now (ms),
-- ARGV[8] keys' TTL (s).
-- Returns {verdict, waiting, stored}: verdict 'ok' (counted), 'waiting' or 'stored' (that quota
-- is reached: nothing counted); the counts are the tenant's before this job.
local id, tenant = ARGV[1], ARGV[2]
local waiting = tonumber(redis.call('HGET', KEYS[2], 'w|' .. tenant) or '0')
local stored = tonumber(redis.call('HGET', KEYS[2], 's|' .. tenant) or '0')
local counted = ARGV[3] == '1'
local input = tonumber(ARGV[4])
if getRecord(KEYS[1], id) then return { 'ok', waiting, stored } end
local maxWaiting, maxStored = tonumber(ARGV[5]), tonumber(ARGV[6])
if counted and maxWaiting > 0 and waiting + 1 > maxWaiting then return { 'waiting', waiting, stored } end
if input > 0 and maxStored > 0 and stored >= maxStored then return { 'stored', waiting, stored } end
local record = { stage = 'w', w = counted and 1 or 0, input = input, result = 0, created = tonumber(ARGV[7]), tenant = tenant }
setRecord(KEYS[1], KEYS[2], id, nil, record, ARGV[8])
return { 'ok', waiting, stored }
