-- A job its tenant deletes (DELETE /v1/jobs/{id}, before the job itself is removed) leaves the
-- model's retained results, and its bytes leave the model's and its tenant's counts. Nothing
-- happens for a job not counted there (no result, or already past a retention bound).
-- KEYS[1] the job's hash, KEYS[2] retained results (ZSET, see finish-job.lua), KEYS[3] retained
-- bytes of the model; ARGV[1] job id, ARGV[2] tenant ('-': none), ARGV[3] tenant stored-bytes key
-- prefix (as finish-job.lua), ARGV[4] its TTL (s). Returns the bytes released.
local bytes = redis.call('HSTRLEN', KEYS[1], 'returnvalue')
if bytes == 0 then return 0 end
if redis.call('ZREM', KEYS[2], ARGV[1] .. '|' .. bytes .. '|' .. ARGV[2]) == 0 then return 0 end
if redis.call('DECRBY', KEYS[3], bytes) <= 0 then redis.call('DEL', KEYS[3]) end
if ARGV[2] ~= '-' then
  local key = ARGV[3] .. ARGV[2] .. ':stored'
  if redis.call('DECRBY', key, bytes) <= 0 then redis.call('DEL', key) else redis.call('EXPIRE', key, ARGV[4]) end
end
return bytes
