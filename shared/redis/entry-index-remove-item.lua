-- A coalesced predict call that is deleted leaves its entry's index (entryIndexKey: one JSON
-- document for all the entry's calls, api/jobs/job-index.ts) in one atomic step, so two calls of
-- one entry deleted at once cannot write back each other's; the key goes with its last call.
-- Its TTL is kept. One key: Cluster-safe.
-- KEYS[1] the entry's index. ARGV[1] the call's place in its entry.
-- Returns 1 when the call was in the index, 0 when it was not.
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local index = cjson.decode(raw)
if type(index.items) ~= 'table' or index.items[ARGV[1]] == nil then return 0 end
index.items[ARGV[1]] = nil
if next(index.items) == nil then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], cjson.encode(index), 'KEEPTTL')
end
return 1
