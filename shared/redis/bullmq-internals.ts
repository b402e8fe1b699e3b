/**
 * Everything ModelHub relies on of BullMQ's Redis layout beyond its public API, in one place:
 * where a job's hash and its lock live, the names of the hash fields read without loading the
 * job, and the job's `data` as stored (a finished job's input is dropped by rewriting it).
 *
 * Checked against bullmq 6.7.0 (package.json pins it). test/integration/bullmq-internals.test.ts
 * runs real jobs through BullMQ and fails when an upgrade changes any of this; run it first after
 * an upgrade, and update the version above once it passes.
 *
 * The Lua scripts beside this file cannot import it and read the same layout literally:
 * claim-for-cancel.lua (the lock key it is handed, the hash's `finishedOn`), finish-job.lua and
 * finish-entry.lua (they write `data`, read `returnvalue`), reconcile-jobs.lua (`finishedOn`),
 * accounting-lib.lua (a completed job's keys, removed when retention pushes it out).
 * The other side of the job's `data`, how a Queue serialises it on add, is what
 * api/image-job-queue.ts relies on (test/integration/image-job-queue.test.ts). How a worker
 * fetches, worker/probing-worker.ts and fetch-probe.lua rely on: the queue's wait, prioritized
 * and delayed keys, and its marker ZSET, whose member "0" only means that a job may be waiting
 * (test/integration/probing-worker.test.ts).
 */
import type { JobData } from '../jobs/payload.js';
import { ENTRY_INPUTS_APART_VERSION, type EntryData } from '../predict/entry.js';
import type { RedisClient } from './connection.js';
import { modelQueueName, predictQueueName } from './keys.js';

/** A job's hash: `<prefix>:<queue name>:<job id>` (what Queue#toKey(id) gives). */
export function bullJobKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}

/** The hash of a job on the model's queue (its data, state timestamps, result): the accounting scripts read it. */
export function jobHashKey(prefix: string, model: string, jobId: string): string {
  return bullJobKey(prefix, modelQueueName(model), jobId);
}

/** The hash of a predict entry (the predict lane's job), in the model's hash slot. */
export function entryHashKey(prefix: string, model: string, entryId: string): string {
  return bullJobKey(prefix, predictQueueName(model), entryId);
}

/**
 * The model queue's completed set (ZSET job id → finished at): the finish scripts take a job that
 * retention pushed out off it and delete the job's keys, as BullMQ's own count bound does
 * (accounting-lib.lua, removeCompletedJob: the job's key names are the set's without "completed").
 */
export function completedSetKey(prefix: string, model: string): string {
  return `${prefix}:${modelQueueName(model)}:completed`;
}

/** BullMQ's lock of an active job: held (the worker's token) while a worker runs it, renewed, gone when it dies. */
export function jobLockKey(prefix: string, model: string, jobId: string): string {
  return `${jobHashKey(prefix, model, jobId)}:lock`;
}

/** Fields of a job's hash. */
export const JOB_HASH_FIELDS = {
  /** The job's data as JSON (storedData): what Job.fromId parses into `job.data`. */
  data: 'data',
  /** When it was added, ms; every stored job has one. */
  timestamp: 'timestamp',
  /** When a worker last started it, ms. */
  processedOn: 'processedOn',
  /** When it completed or failed for good, ms. */
  finishedOn: 'finishedOn',
  /** The worker's result as JSON (completed jobs). */
  returnvalue: 'returnvalue',
  failedReason: 'failedReason',
  /** Attempts made (`job.attemptsMade`): "atm" since BullMQ 5. */
  attemptsMade: 'atm',
  /** The same before BullMQ 5: still read, for jobs a release on BullMQ 4 stored. */
  attemptsMadeBefore5: 'attemptsMade',
  /** Times the job was found stalled (`job.stalledCounter`). */
  stalledCounter: 'stc',
} as const;

/** The job's `data` field as BullMQ stores it: its JSON, which Job.fromId parses back. */
export function storedData(data: unknown): string {
  return JSON.stringify(data);
}

/** A finished job's `data` without its input (finish-job.lua writes it over the data it was queued with). */
export function finishedJobData(data: JobData): string {
  return storedData({ ...data, input: {}, input_dropped: true });
}

/**
 * A finished predict entry's `data` without its items' inputs, for finish-entry.lua to write over
 * its data; '' (nothing to rewrite) for an entry whose inputs live apart (payload v2), whose data
 * never held them: rewriting it cost each finish the data's bytes twice over, for nothing.
 */
export function finishedEntryData(data: EntryData): string {
  if (data.v >= ENTRY_INPUTS_APART_VERSION) return '';
  return storedData({ ...data, items: data.items.map((it) => ({ ...it, input: {} })), input_dropped: true });
}

/** What a job's view needs of its hash, as stored (strings), without its data. */
export interface JobHashFacts {
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  /** The result's JSON, or null. */
  returnvalue: string | null;
  failedReason?: string;
  attemptsMade: number;
  stalledCounter: number;
}

const F = JOB_HASH_FIELDS;
const FACT_FIELDS = [
  F.timestamp,
  F.processedOn,
  F.finishedOn,
  F.returnvalue,
  F.failedReason,
  F.attemptsMade,
  F.attemptsMadeBefore5,
  F.stalledCounter,
] as const;

/** One HMGET of the job's hash `key` (not its data: a queued job's input can be megabytes); null when the job is gone. */
export async function readJobHash(redis: RedisClient, key: string): Promise<JobHashFacts | null> {
  const [timestamp, processedOn, finishedOn, returnvalue, failedReason, atm, attemptsMade, stc] = await redis.hmget(
    key,
    ...FACT_FIELDS,
  );
  // Every job BullMQ stores has a timestamp: without one the job is gone.
  if (timestamp === null) return null;
  const int = (v: string | null) => (v ? Number.parseInt(v, 10) : undefined);
  return {
    timestamp: Number.parseInt(timestamp, 10),
    processedOn: int(processedOn),
    finishedOn: int(finishedOn),
    returnvalue,
    failedReason: failedReason ?? undefined,
    attemptsMade: int(attemptsMade ?? atm) ?? 0,
    stalledCounter: int(stc) ?? 0,
  };
}

/** Whether a predict entry is gone or finished, from its hash (one HMGET). */
export async function entryGoneOrFinished(redis: RedisClient, prefix: string, model: string, entryId: string) {
  const [timestamp, finishedOn] = await redis.hmget(entryHashKey(prefix, model, entryId), F.timestamp, F.finishedOn);
  return timestamp === null || finishedOn !== null;
}
