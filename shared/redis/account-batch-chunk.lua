-- A batch chunk about to be staged: its record and its share of its tenant's counts, unless a
-- quota is already reached, checked and counted in one step (as account-submit.lua for a job).
-- Chunk records live beside the jobs' records, in the model queue's hash slot (docs/exactness.md):
--   "<batch>#<chunk>" -> "<items>|<input bytes>|<created ms>|<tenant>"
--   "<batch>"         -> "<chunks counted>|<created ms>|<tenant>"  (the batch, while it holds any)
-- Counters (the usage hash): "bi|<t>" batch items in flight, "bb|<t>" batches in flight,
-- "bs|<t>" batch input bytes, and the same bytes in "s|<t>" (the stored-bytes quota jobs share).
-- A resent call finds its record and changes nothing.
-- KEYS[1] batch records, KEYS[2] usage. ARGV[1] batch id, ARGV[2] chunk, ARGV[3] items,
-- ARGV[4] input bytes, ARGV[5] tenant ('-'), ARGV[6] batch-items limit (0: none),
-- ARGV[7] stored-bytes limit (0: none), ARGV[8] now (ms), ARGV[9] keys' TTL (s).
-- Returns {verdict, items, stored}: 'ok', 'items' or 'stored' (nothing counted); the tenant's
-- counts before this chunk.
local batch, tenant = ARGV[1], ARGV[5]
local items, bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local inFlight = tonumber(redis.call('HGET', KEYS[2], 'bi|' .. tenant) or '0')
local stored = tonumber(redis.call('HGET', KEYS[2], 's|' .. tenant) or '0')
local field = batch .. '#' .. ARGV[2]
if redis.call('HEXISTS', KEYS[1], field) == 1 then return { 'ok', inFlight, stored } end
local maxItems, maxStored = tonumber(ARGV[6]), tonumber(ARGV[7])
if maxItems > 0 and inFlight + items > maxItems then return { 'items', inFlight, stored } end
if maxStored > 0 and bytes > 0 and stored >= maxStored then return { 'stored', inFlight, stored } end
redis.call('HSET', KEYS[1], field, items .. '|' .. bytes .. '|' .. ARGV[8] .. '|' .. tenant)
local parent = redis.call('HGET', KEYS[1], batch)
if parent then
  local held, rest = string.match(parent, '^(%d+)|(.*)$')
  redis.call('HSET', KEYS[1], batch, (tonumber(held) + 1) .. '|' .. rest)
else
  redis.call('HSET', KEYS[1], batch, '1|' .. ARGV[8] .. '|' .. tenant)
  redis.call('HINCRBY', KEYS[2], 'bb|' .. tenant, 1)
end
redis.call('HINCRBY', KEYS[2], 'bi|' .. tenant, items)
if bytes > 0 then
  redis.call('HINCRBY', KEYS[2], 'bs|' .. tenant, bytes)
  redis.call('HINCRBY', KEYS[2], 's|' .. tenant, bytes)
end
-- Only ever lengthened: the usage hash is shared with the jobs' counters, whose TTL is shorter.
for i = 1, 2 do
  if redis.call('TTL', KEYS[i]) < tonumber(ARGV[9]) then redis.call('EXPIRE', KEYS[i], ARGV[9]) end
end
return { 'ok', inFlight, stored }
