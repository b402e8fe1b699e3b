-- Per-job accounting records and the usage counters they add up to (docs/exactness.md).
-- Prepended to every script that moves a tenant's counts (lua-commands.ts `include`).
--
-- One HASH of records per model (field: job id) and one HASH of counters per model, both in the
-- model queue's hash slot. A record is "<stage>|<waiting counted 0/1>|<input bytes>|<result
-- bytes>|<created ms>|<tenant>"; its stage is
--   w  submitted, not yet claimed: in its tenant's waiting count (when counted) and stored bytes
--   i  claimed by a worker (running, or waiting for a retry): its input in the stored bytes
--   r  finished: its result in the stored bytes and in the model's retained bytes
--   c  canceled, x  result pushed out by retention: nothing counted
-- Counters: "w|<tenant>" waiting jobs, "s|<tenant>" stored bytes, "retained" the model's
-- retained result bytes. Invariant: every counter equals the sum of what the records add to it.
-- Scripts change a record only through setRecord, which takes the old record's share out and
-- puts the new one's in, in the same atomic step; a transition a record has already made is a
-- no-op, so a script resent after a lost reply changes nothing the second time.

local function parseRecord(text)
  if not text then return nil end
  local stage, w, input, result, created, tenant =
    string.match(text, '^(%a)|(%d)|(%d+)|(%d+)|(%d+)|(.*)$')
  if not stage then return nil end
  return { stage = stage, w = tonumber(w), input = tonumber(input), result = tonumber(result),
           created = tonumber(created), tenant = tenant }
end

local function formatRecord(r)
  return r.stage .. '|' .. r.w .. '|' .. r.input .. '|' .. r.result .. '|' .. r.created .. '|' .. r.tenant
end

local function withStage(r, stage, result)
  return { stage = stage, w = r.w, input = r.input, result = result or r.result, created = r.created, tenant = r.tenant }
end

-- A retained result's member of the model's retained ZSET (the format finish-job.lua has always written).
local function retainedMember(id, r)
  return id .. '|' .. r.result .. '|' .. r.tenant
end

local function addTo(usageKey, field, delta)
  if delta == 0 then return end
  if redis.call('HINCRBY', usageKey, field, delta) <= 0 then redis.call('HDEL', usageKey, field) end
end

-- What a record adds to the counters, times `sign` (1 to add, -1 to take away).
local function applyRecord(usageKey, r, sign)
  if r.stage == 'w' and r.w == 1 then addTo(usageKey, 'w|' .. r.tenant, sign) end
  local stored = 0
  if r.stage == 'w' or r.stage == 'i' then
    stored = r.input
  elseif r.stage == 'r' and r.tenant ~= '-' then
    stored = r.result
  end
  addTo(usageKey, 's|' .. r.tenant, sign * stored)
  if r.stage == 'r' then addTo(usageKey, 'retained', sign * r.result) end
end

-- Refreshes the TTL of the records and usage hashes after records changed.
local function expireAccounting(recordsKey, usageKey, ttl)
  redis.call('EXPIRE', recordsKey, ttl)
  -- Only lengthened: batch chunks' counts (account-batch-chunk.lua) share this hash and may live longer.
  if redis.call('TTL', usageKey) < tonumber(ttl) then redis.call('EXPIRE', usageKey, ttl) end
end

-- Replaces record `old` (nil: none) of job `id` with `new` (nil: delete it), moving the counters.
-- `deferExpiry`: the caller changes several records and calls expireAccounting once at its end
-- (a script over a whole entry would otherwise refresh both TTLs per item).
local function setRecord(recordsKey, usageKey, id, old, new, ttl, deferExpiry)
  if old then applyRecord(usageKey, old, -1) end
  if new then
    applyRecord(usageKey, new, 1)
    redis.call('HSET', recordsKey, id, formatRecord(new))
  else
    redis.call('HDEL', recordsKey, id)
  end
  if not deferExpiry then expireAccounting(recordsKey, usageKey, ttl) end
end

local function getRecord(recordsKey, id)
  return parseRecord(redis.call('HGET', recordsKey, id))
end

-- Retention's bounds over the model's retained results (ZSET "<id>|<bytes>|<tenant>" → finished
-- at): members past the age or count bound, or the oldest while the retained bytes are over the
-- byte bound, move their record to x. `keep(id)` names results just finished, never pushed out
-- by bytes (their result fit MAX_RESULT_BYTES). Returns the ids the byte bound pushed out (their
-- jobs are still kept: the caller removes them); jobs past age or count are BullMQ's to remove.
local function pushOutRetained(recordsKey, usageKey, retainedKey, now, ageMs, maxCount, maxBytes, keep, ttl)
  local oldest = now - ageMs
  local pushedOut = {}
  -- The retained bytes and count are read once, then moved as this loop moves them: a result
  -- pushed out takes exactly its bytes off 'retained' (applyRecord) and its member off the set.
  -- The TTLs are refreshed once, at the end (not once per result pushed out).
  local total = tonumber(redis.call('HGET', usageKey, 'retained') or '0')
  local count = redis.call('ZCARD', retainedKey)
  local changed = false
  while true do
    local head = redis.call('ZRANGE', retainedKey, 0, 0, 'WITHSCORES')
    if #head == 0 then break end
    local headId = string.match(head[1], '^([^|]*)|%d+|.*$')
    local byAge = tonumber(head[2]) < oldest
    local byCount = not byAge and count > maxCount
    local byBytes = maxBytes > 0 and total > maxBytes and not keep(headId)
    -- A member this script did not write is dropped, so it can never wedge every later finish.
    if headId and not (byAge or byCount or byBytes) then break end
    redis.call('ZREM', retainedKey, head[1])
    count = count - 1
    if headId then
      local out = getRecord(recordsKey, headId)
      if out and out.stage == 'r' then
        setRecord(recordsKey, usageKey, headId, out, withStage(out, 'x'), ttl, true)
        total = total - out.result
        changed = true
      end
      if not byAge and not byCount then table.insert(pushedOut, headId) end
    end
  end
  if changed then expireAccounting(recordsKey, usageKey, ttl) end
  return pushedOut
end
