-- A job deleted by its tenant (DELETE /v1/jobs/{id}) leaves the model's retained results, and
-- its bytes leave the model's and its tenant's counts. Nothing happens for a job not there.
-- KEYS[1] retained results (ZSET), KEYS[2] their sizes (HASH), KEYS[3] retained bytes of the
-- model; ARGV[1] job id, ARGV[2] tenant stored-bytes key prefix (as finish-job.lua), ARGV[3] TTL (s).
local info = redis.call('HGET', KEYS[2], ARGV[1])
if not info then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local sep = string.find(info, '|', 1, true)
local bytes = tonumber(string.sub(info, 1, sep - 1))
local owner = string.sub(info, sep + 1)
if redis.call('DECRBY', KEYS[3], bytes) <= 0 then redis.call('DEL', KEYS[3]) end
if owner ~= '-' then
  local key = ARGV[2] .. owner .. ':stored'
  if redis.call('DECRBY', key, bytes) <= 0 then redis.call('DEL', key) else redis.call('EXPIRE', key, ARGV[3]) end
end
return bytes
