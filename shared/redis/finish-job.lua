-- A finished job gives up its input, and its result joins the model's retained results, which
-- are bounded like BullMQ bounds the completed set (age, count) and also by bytes. A tenant's
-- stored bytes (inputs waiting plus results kept, per model) move with them.
-- KEYS[1] the job's hash, KEYS[2] retained results (ZSET "<id>|<bytes>|<tenant>" → finished at,
-- ms), KEYS[3] retained bytes of the model, KEYS[4] the job's tenant's stored bytes, KEYS[5]
-- the job's run/cancel claim. All in the queue's hash slot.
-- ARGV[1] the job's data without its input (JSON), ARGV[2] input bytes counted at submit,
-- ARGV[3] job id, ARGV[4] tenant ('-': none, not counted), ARGV[5] now (ms),
-- ARGV[6] retention age (ms), ARGV[7] retention count, ARGV[8] retention bytes (0: no bound),
-- ARGV[9] tenant stored-bytes key = ARGV[9] .. tenant .. ':stored', ARGV[10] its TTL (s).
-- Returns the ids of older jobs the byte bound pushed out (BullMQ still holds them: the caller
-- removes them); jobs past the age or count bound are BullMQ's own to remove.
local function adjust(key, delta)
  if delta == 0 then return end
  if redis.call('INCRBY', key, delta) <= 0 then redis.call('DEL', key) else redis.call('EXPIRE', key, ARGV[10]) end
end
-- Gone already (removed by a cancel, which settled its tenant's input bytes itself). A plain
-- HSET on a removed job would also leave a stray hash with no TTL.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local resultBytes = redis.call('HSTRLEN', KEYS[1], 'returnvalue')
redis.call('HSET', KEYS[1], 'data', ARGV[1])
if ARGV[4] ~= '-' then
  local inputBytes = tonumber(ARGV[2])
  -- A canceled job's input was taken off its tenant's bytes by the cancel (claim-for-cancel.lua).
  if inputBytes > 0 and redis.call('GET', KEYS[5]) == 'canceled' then inputBytes = 0 end
  adjust(KEYS[4], resultBytes - inputBytes)
end
if resultBytes == 0 then return {} end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3] .. '|' .. resultBytes .. '|' .. ARGV[4])
local total = redis.call('INCRBY', KEYS[3], resultBytes)
local oldest = tonumber(ARGV[5]) - tonumber(ARGV[6])
local maxCount, maxBytes = tonumber(ARGV[7]), tonumber(ARGV[8])
local pushedOut = {}
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local id, bytesText, owner = string.match(head[1], '^([^|]*)|(%d+)|(.*)$')
  if not id then
    -- Not a member this script wrote: dropped, so it can never wedge every later finish.
    redis.call('ZREM', KEYS[2], head[1])
  else
    local byAge = tonumber(head[2]) < oldest
    local byCount = not byAge and redis.call('ZCARD', KEYS[2]) > maxCount
    -- The job just finished is never pushed out by bytes (its result fit MAX_RESULT_BYTES).
    local byBytes = maxBytes > 0 and total > maxBytes and id ~= ARGV[3]
    if not (byAge or byCount or byBytes) then break end
    redis.call('ZREM', KEYS[2], head[1])
    local bytes = tonumber(bytesText)
    total = redis.call('DECRBY', KEYS[3], bytes)
    if owner ~= '-' then adjust(ARGV[9] .. owner .. ':stored', -bytes) end
    if not byAge and not byCount then table.insert(pushedOut, id) end
  end
end
return pushedOut
