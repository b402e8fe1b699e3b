-- A batch chunk's result lines, stored exactly once whoever reports them (a worker, its retry
-- after a crash, a cancel, the batch's final sweep): the first HSETNX wins, only it moves counts.
-- KEYS[1] counts hash, KEYS[2] results hash, KEYS[3] done list, KEYS[4] started hash,
-- KEYS[5] the chunk's staged inputs.
-- ARGV[1] chunk number, ARGV[2] JSONL block, ARGV[3..5] succeeded/failed/canceled items,
-- ARGV[6] items in the chunk, ARGV[7] now (ms), ARGV[8] TTL (s), ARGV[9] chunks in the batch.
-- Returns 1 when stored, 0 when the chunk's results were already there.
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[1])
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'running', -tonumber(ARGV[6])) end
redis.call('HINCRBY', KEYS[1], 'succeeded', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'canceled', ARGV[5])
local done = redis.call('HINCRBY', KEYS[1], 'chunks_done', 1)
if done >= tonumber(ARGV[9]) then redis.call('HSETNX', KEYS[1], 'completed_at', ARGV[7]) end
redis.call('DEL', KEYS[5])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[8]) end
return 1
