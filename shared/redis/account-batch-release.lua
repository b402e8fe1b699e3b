-- Batch chunks that are done with (finished, canceled, discarded with their upload, or expired):
-- each one's record leaves the counts, and the batch's own record goes with its last chunk.
-- Idempotent: a chunk without a record (released already) changes nothing, so the worker that ran
-- a chunk, a cancel, the batch's final sweep and the reconciler may all release the same chunk.
-- KEYS[1] batch records, KEYS[2] usage. ARGV[1] batch id, ARGV[2] keys' TTL (s), ARGV[3..] chunks.
-- Returns the input bytes released.
local batch = ARGV[1]
local function take(field, delta)
  if delta == 0 then return end
  if redis.call('HINCRBY', KEYS[2], field, -delta) <= 0 then redis.call('HDEL', KEYS[2], field) end
end
local released = 0
for i = 3, #ARGV do
  local field = batch .. '#' .. ARGV[i]
  local record = redis.call('HGET', KEYS[1], field)
  if record then
    local items, bytes, tenant = string.match(record, '^(%d+)|(%d+)|%d+|(.*)$')
    items, bytes = tonumber(items), tonumber(bytes)
    redis.call('HDEL', KEYS[1], field)
    take('bi|' .. tenant, items)
    take('bs|' .. tenant, bytes)
    take('s|' .. tenant, bytes)
    released = released + bytes
    local parent = redis.call('HGET', KEYS[1], batch)
    if parent then
      local held, rest = string.match(parent, '^(%d+)|(.*)$')
      held = tonumber(held) - 1
      if held <= 0 then
        redis.call('HDEL', KEYS[1], batch)
        take('bb|' .. tenant, 1)
      else
        redis.call('HSET', KEYS[1], batch, held .. '|' .. rest)
      end
    end
  end
end
for i = 1, 2 do
  if redis.call('TTL', KEYS[i]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return released
