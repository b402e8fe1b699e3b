-- Per-job accounting records and the usage counters they add up to (docs/exactness.md).
-- Prepended to every script that moves a tenant's counts (lua-commands.ts `include`).
--
-- One HASH of records per model (field: job id) and one HASH of counters per model, both in the
-- model queue's hash slot. A record is "<stage>|<waiting counted 0/1>|<input bytes>|<result
-- bytes>|<created ms>|<tenant>"; its stage is
--   w  submitted, not yet claimed: in its tenant's waiting count (when counted) and stored bytes
--   i  claimed by a worker (running, or waiting for a retry): its input in the stored bytes
--   r  finished: its result in the stored bytes and in the model's retained bytes
--   c  canceled, x  result pushed out by retention while its job is still kept (a release before
--      removeCompletedJob, below, left them; the reconciler removes the job): nothing counted
-- Counters: "w|<tenant>" waiting jobs, "s|<tenant>" stored bytes, "retained" the model's
-- retained result bytes. Invariant: every counter equals the sum of what the records add to it.
-- Scripts change a record only through setRecord or a batch (batchSet), which take the old
-- record's share out and put the new one's in, in the same atomic step; a transition a record
-- has already made is a no-op, so a script resent after a lost reply changes nothing the second
-- time.

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

-- Whether `id` is a coalesced predict call's record (`<entry>.p<k>`, or `<entry>.a` for the
-- entry's anonymous calls: shared/predict/entry.ts); a job's id is a UUID.
local function isItemId(id)
  return string.find(id, '%.p%d+$') ~= nil or string.find(id, '%.a$') ~= nil
end

-- The record id of the anonymous calls of the entry item `id` belongs to (finish-entry.lua), or
-- nil for an id that is not an item's.
local function anonymousCallsId(id)
  local entry = string.match(id, '^(.+)%.p%d+$')
  return entry and (entry .. '.a') or nil
end

-- A retained result's member of the model's retained ZSET (the format finish-job.lua has always written).
local function retainedMember(id, r)
  return id .. '|' .. r.result .. '|' .. r.tenant
end

local function addTo(usageKey, field, delta)
  if delta == 0 then return end
  if redis.call('HINCRBY', usageKey, field, delta) <= 0 then redis.call('HDEL', usageKey, field) end
end

-- What a record adds to the counters, times `sign` (1 to add, -1 to take away), through
-- `add(field, delta)`.
local function applyRecord(add, r, sign)
  if r.stage == 'w' and r.w == 1 then add('w|' .. r.tenant, sign) end
  local stored = 0
  if r.stage == 'w' or r.stage == 'i' then
    stored = r.input
  elseif r.stage == 'r' and r.tenant ~= '-' then
    stored = r.result
  end
  add('s|' .. r.tenant, sign * stored)
  if r.stage == 'r' then add('retained', sign * r.result) end
end

-- Refreshes the TTL of the records and usage hashes after records changed.
local function expireAccounting(recordsKey, usageKey, ttl)
  redis.call('EXPIRE', recordsKey, ttl)
  -- Only lengthened: batch chunks' counts (account-batch-chunk.lua) share this hash and may live longer.
  if redis.call('TTL', usageKey) < tonumber(ttl) then redis.call('EXPIRE', usageKey, ttl) end
end

-- Replaces record `old` (nil: none) of job `id` with `new` (nil: delete it), moving the counters
-- and refreshing the TTLs at once. Scripts over many records use a batch (below) instead.
local function setRecord(recordsKey, usageKey, id, old, new, ttl)
  local add = function(field, delta) addTo(usageKey, field, delta) end
  if old then applyRecord(add, old, -1) end
  if new then
    applyRecord(add, new, 1)
    redis.call('HSET', recordsKey, id, formatRecord(new))
  else
    redis.call('HDEL', recordsKey, id)
  end
  expireAccounting(recordsKey, usageKey, ttl)
end

-- A batch: the record changes of a script over many records (an entry's items, retention's
-- push-out), made in memory as setRecord makes them and written by flushBatch at the script's
-- end, each changed counter field with one HINCRBY of its summed delta and the records with one
-- HSET and one HDEL. The script is atomic, so nothing can see the counters between its changes;
-- while every counter equals the sum of its records (the invariant above), no field goes below
-- zero part-way, so one summed HINCRBY ends where the per-record ones ended. Reads during the
-- script go through batchChanged and batchCounter, which see the changes not yet written.
local function openBatch(recordsKey, usageKey)
  local b = { records = recordsKey, usage = usageKey, deltas = {}, fields = {}, changed = {}, ids = {} }
  b.add = function(field, delta)
    if delta == 0 then return end
    if b.deltas[field] == nil then
      b.deltas[field] = 0
      table.insert(b.fields, field)
    end
    b.deltas[field] = b.deltas[field] + delta
  end
  return b
end

-- As setRecord, in batch `b`.
local function batchSet(b, id, old, new)
  if old then applyRecord(b.add, old, -1) end
  if new then applyRecord(b.add, new, 1) end
  if b.changed[id] == nil then table.insert(b.ids, id) end
  b.changed[id] = new or false
end

-- Whether batch `b` changed the record of `id`, and to what (nil: deleted).
local function batchChanged(b, id)
  local r = b.changed[id]
  if r == nil then return false, nil end
  return true, r or nil
end

-- Counter `field` as batch `b` leaves it, given its value in Redis (`stored`: a string or nil).
local function batchCounter(b, field, stored)
  return tonumber(stored or '0') + (b.deltas[field] or 0)
end

-- Calls redis.call(cmd, key, <list...>) in pieces, so a long list stays within Lua's stack (an
-- even piece: a list of pairs, field and value or score and member, keeps its pairs whole).
local function callInPieces(cmd, key, list)
  local piece = 512
  for i = 1, #list, piece do
    redis.call(cmd, key, unpack(list, i, math.min(#list, i + piece - 1)))
  end
end

-- Writes batch `b`'s changes, at the end of its script, and refreshes the TTLs once (none when
-- nothing changed).
local function flushBatch(b, ttl)
  if #b.ids == 0 and #b.fields == 0 then return end
  for _, field in ipairs(b.fields) do addTo(b.usage, field, b.deltas[field]) end
  local sets, dels = {}, {}
  for _, id in ipairs(b.ids) do
    local r = b.changed[id]
    if r then
      table.insert(sets, id)
      table.insert(sets, formatRecord(r))
    else
      table.insert(dels, id)
    end
  end
  callInPieces('HSET', b.records, sets)
  callInPieces('HDEL', b.records, dels)
  expireAccounting(b.records, b.usage, ttl)
end

local function getRecord(recordsKey, id)
  return parseRecord(redis.call('HGET', recordsKey, id))
end

-- A finished job retention pushed out leaves BullMQ at once, as BullMQ's own count bound removes
-- one (removeJobsByMaxCount: the job's keys, its member of the completed set), in the finishing
-- script: before, its record waited at x for the reconciler's pass to remove it with Queue.remove
-- (two more scripts and round trips a job), and a burst of predict calls pushing out earlier jobs
-- paid for those removals in its own windows. `completedKey` is "<prefix>:<model queue>:completed";
-- a job's hash is that name with the job id in place of "completed", in the same hash slot. A job
-- not in the completed set (never the case for a finished record: failed jobs keep no result) is
-- left for the reconciler, at x. The keys are BullMQ 6's (shared/redis/bullmq-internals.ts, checked by
-- test/integration/bullmq-internals.test.ts); our jobs have no parent and no deduplication id.
local function removeCompletedJob(completedKey, id)
  if redis.call('ZREM', completedKey, id) == 0 then return false end
  local jobKey = string.sub(completedKey, 1, -#'completed' - 1) .. id
  redis.call('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed',
    jobKey .. ':failed', jobKey .. ':unsuccessful')
  return true
end

-- Retention's bounds over one of the model's two retained sets (ZSET "<id>|<bytes>|<tenant>" →
-- finished at; keys.ts: the jobs' results, or coalesced predict calls'), the one the finishing
-- script's results joined: members past the age or that set's count bound, or the oldest while
-- the model's retained bytes (both sets) are over the byte bound, leave: a coalesced call's record
-- is deleted (its entry stays until BullMQ's own retention removes it), a job is removed from
-- BullMQ with its record (removeCompletedJob), in batch `b` (the caller flushes it). `keep(id)`
-- names results just finished, never pushed out by count or bytes (their result fit
-- MAX_RESULT_BYTES; a caller whose notice was lost reads it back). Returns the ids the byte bound
-- pushed out (for the caller's log: they are gone already).
local function pushOutRetained(b, retainedKey, completedKey, now, ageMs, maxCount, maxBytes, keep)
  local oldest = now - ageMs
  local pushedOut = {}
  -- The retained bytes and count are read once, then moved as this loop moves them: a result
  -- pushed out takes exactly its bytes off 'retained' (applyRecord) and its member off the set.
  local total = batchCounter(b, 'retained', redis.call('HGET', b.usage, 'retained'))
  local count = redis.call('ZCARD', retainedKey)
  -- The set's head is read in pieces (the first as long as a finish usually pushes out), with
  -- the pieces' records in one HMGET each; the members pushed out are always a prefix of the
  -- set, taken off with one ZREMRANGEBYRANK at the end.
  local removed, piece = 0, 4
  while true do
    local head = redis.call('ZRANGE', retainedKey, removed, removed + piece - 1, 'WITHSCORES')
    if #head == 0 then break end
    local ids, unread = {}, {}
    for k = 1, #head, 2 do
      local headId = string.match(head[k], '^([^|]*)|%d+|.*$')
      ids[(k + 1) / 2] = headId
      if headId and not batchChanged(b, headId) then table.insert(unread, headId) end
    end
    local fromRedis = {}
    if #unread > 0 then
      local raw = redis.call('HMGET', b.records, unpack(unread))
      for k, id in ipairs(unread) do fromRedis[id] = raw[k] or false end
    end
    local stop = false
    for k = 1, #head / 2 do
      local headId = ids[k]
      local byAge = tonumber(head[2 * k]) < oldest
      -- A result just finished is never pushed out by count either: one older but finished in the
      -- same millisecond may sort after it (equal scores order by member), and the members leave
      -- as a prefix, so the bound stops there and the set is one over until the next finish.
      local byCount = not byAge and count > maxCount and not keep(headId)
      local byBytes = maxBytes > 0 and total > maxBytes and not keep(headId)
      -- A member this script did not write is dropped, so it can never wedge every later finish.
      if headId and not (byAge or byCount or byBytes) then
        stop = true
        break
      end
      removed = removed + 1
      count = count - 1
      if headId then
        local changed, out = batchChanged(b, headId)
        if not changed then out = parseRecord(fromRedis[headId] or nil) end
        if out and out.stage == 'r' then
          -- A coalesced call's record is dropped: only the entry's finish marker (finish-entry.lua)
          -- guards its count. A job's record goes with its job; a second finish of it finds the
          -- job gone (finish-job.lua) and changes nothing.
          if isItemId(headId) or removeCompletedJob(completedKey, headId) then
            batchSet(b, headId, out, nil)
          else
            batchSet(b, headId, out, withStage(out, 'x'))
          end
          total = total - out.result
        end
        if not byAge and not byCount then table.insert(pushedOut, headId) end
      end
    end
    if stop or #head < 2 * piece then break end
    piece = piece * 4
  end
  if removed > 0 then redis.call('ZREMRANGEBYRANK', retainedKey, 0, removed - 1) end
  return pushedOut
end
