/**
 * Batches: many inputs of one model submitted as one unit. Shared by the API (which stages and
 * commits them) and the workers (which run their chunks).
 *
 * Layout. A batch of T items is cut into chunks of up to BATCH_CHUNK_SIZE items. Each chunk's
 * inputs are staged as one Redis value while the upload is read; the batch is then committed
 * as one BullMQ flow on the model's bulk lane: a parent job (the batch, whose data is the
 * batch's fixed description) with one child job per chunk. BullMQ writes a flow in one MULTI,
 * so a batch is queued whole or not at all, and the parent becomes runnable only when every
 * chunk is done: that is where batch.completed is sent, exactly once.
 *
 * Everything that changes while the batch runs (counts, results) lives in keys tagged with the
 * batch id, so on a Redis Cluster each script below touches one slot.
 */
import type { WebhookEvent } from './jobs/payload.js';

export const BATCH_FORMAT_VERSION = 1;

/**
 * The bulk lane of a model: its own BullMQ queue next to the interactive one (same hash tag).
 * Workers take at most a couple of chunks from it at a time, so bulk work never piles up in a
 * worker ahead of interactive jobs (see worker/item-intake.ts).
 */
export function bulkQueueName(model: string): string {
  return `{model.${model}}.bulk`;
}

/** Redis keys of one batch's moving parts. */
export function batchKeys(prefix: string, batchId: string) {
  const base = `${prefix}:batch:{${batchId}}`;
  return {
    /** HASH: running, succeeded, failed, canceled, chunks_done, started_at, completed_at, canceled_at. */
    counts: `${base}:counts`,
    /** HASH chunk number → JSONL block of that chunk's result lines (written once). */
    results: `${base}:results`,
    /** LIST of chunk numbers in the order they finished (results in completion order). */
    done: `${base}:done`,
    /** HASH chunk number → time a worker first started it (a retry keeps it). */
    started: `${base}:started`,
    /** STRING: the staged items of one chunk, deleted once the chunk is done. */
    input: (chunk: number) => `${base}:in:${chunk}`,
  };
}

/** Batch id → model and tenant, so GET /v1/batches/:id finds the model's bulk queue. */
export function batchIndexKey(prefix: string, batchId: string): string {
  return `${prefix}:batchindex:${batchId}`;
}

/** One staged item: its input, or the spec error that failed it at upload (a malformed line). */
export type StagedItem = { i: number; input: Record<string, unknown> } | { i: number; error: { error_code: number; error_msg: string } };

/** Data of a batch's parent job: what does not change while it runs. */
export interface BatchData {
  v: typeof BATCH_FORMAT_VERSION;
  kind: 'batch';
  id: string;
  model: string;
  tenant: string | null;
  total: number;
  chunks: number;
  /** Items per chunk, in chunk order. */
  sizes: number[];
  created_at: number;
  /** Epoch ms; items not started by then fail with DEADLINE_EXCEEDED. */
  deadline_at?: number;
  webhook?: { url: string; events: BatchWebhookEvent[] };
}

/** Data of one chunk job: which items; the inputs themselves are staged under batchKeys().input. */
export interface ChunkData {
  v: typeof BATCH_FORMAT_VERSION;
  kind: 'chunk';
  batch: string;
  model: string;
  chunk: number;
  first: number;
  count: number;
  chunks: number;
  deadline_at?: number;
}

export type BulkJobData = BatchData | ChunkData;

export type BatchWebhookEvent = 'batch.completed';
export type AnyWebhookEvent = WebhookEvent | BatchWebhookEvent;

/** One line of GET /v1/batches/:id/results. */
export interface ResultLine {
  index: number;
  status: 'succeeded' | 'failed' | 'canceled';
  output?: Record<string, unknown>;
  error?: { success: false; error_code: number; error_msg: string; request_id?: string };
  completed_at: string;
}

/** How long a batch's keys live while it may still run (retention plus the longest timeout_s), s. */
export function batchLiveTtlS(config: { JOB_RETENTION_S: number }): number {
  return config.JOB_RETENTION_S + 7 * 24 * 3600;
}

export const chunkJobId = (batchId: string, chunk: number) => `${batchId}.${chunk}`;
export const itemRequestId = (batchId: string, index: number) => `${batchId}.i${index}`;

/**
 * A worker starting a chunk. Returns 'canceled' when the batch was canceled first; otherwise
 * records the start (once: a retried chunk is not counted twice) and returns 'run'.
 * KEYS: counts, started. ARGV: chunk, item count, now (ms), ttl (s).
 */
export const START_CHUNK = `
if redis.call('HEXISTS', KEYS[1], 'canceled_at') == 1 then return 'canceled' end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'running', ARGV[2])
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return 'run'`;

/**
 * A chunk's results, stored exactly once whoever reports them (a worker, its retry after a
 * crash, a cancel, the batch's final sweep): the first HSETNX wins and only it moves the counts.
 * KEYS: counts, results, done, started, input. ARGV: chunk, block, succeeded, failed, canceled,
 * item count, now (ms), ttl (s), chunks in the batch. Returns 1 when stored, 0 when already there.
 */
export const FINISH_CHUNK = `
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
return 1`;

export interface ChunkRef {
  batch: string;
  chunk: number;
  count: number;
  chunks: number;
}

/** Stores a chunk's result lines once (FINISH_CHUNK). True when this call stored them. */
export async function finishChunk(
  redis: { eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown> },
  prefix: string,
  ref: ChunkRef,
  lines: ResultLine[],
  ttlS: number,
): Promise<boolean> {
  const k = batchKeys(prefix, ref.batch);
  const count = (s: ResultLine['status']) => lines.filter((l) => l.status === s).length;
  const block = lines.map((l) => JSON.stringify(l)).join('\n');
  const stored = await redis.eval(
    FINISH_CHUNK,
    5,
    k.counts,
    k.results,
    k.done,
    k.started,
    k.input(ref.chunk),
    ref.chunk,
    block,
    count('succeeded'),
    count('failed'),
    count('canceled'),
    ref.count,
    Date.now(),
    ttlS,
    ref.chunks,
  );
  return stored === 1;
}

/** Result lines for items that never ran: all canceled, or all failed with one error. */
export function unranLines(batchId: string, first: number, count: number, status: 'failed' | 'canceled', error: { errorCode: number; message: string }): ResultLine[] {
  const completed_at = new Date().toISOString();
  return Array.from({ length: count }, (_, k) => ({
    index: first + k,
    status,
    error: { success: false as const, error_code: error.errorCode, error_msg: error.message, request_id: itemRequestId(batchId, first + k) },
    completed_at,
  }));
}

export type BatchStatus = 'queued' | 'running' | 'completed' | 'canceled';

export interface BatchCounts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  canceled: number;
}

export interface BatchView {
  id: string;
  object: 'batch';
  model: string;
  status: BatchStatus;
  counts: BatchCounts;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  canceled_at?: string;
  urls: { get: string; results: string; cancel: string };
}

const iso = (ms: string | number | undefined) => (ms ? new Date(Number(ms)).toISOString() : undefined);

/** The API's batch object from its fixed description and its counts hash. */
export function batchView(data: BatchData, counts: Record<string, string>): BatchView {
  const n = (f: string) => Math.max(0, Number(counts[f] ?? 0));
  const running = n('running');
  const succeeded = n('succeeded');
  const failed = n('failed');
  const canceled = n('canceled');
  const finished = n('chunks_done') >= data.chunks;
  const status: BatchStatus = counts.canceled_at ? 'canceled' : finished ? 'completed' : counts.started_at ? 'running' : 'queued';
  const base = `/v1/batches/${data.id}`;
  return {
    id: data.id,
    object: 'batch',
    model: data.model,
    status,
    counts: { total: data.total, queued: Math.max(0, data.total - running - succeeded - failed - canceled), running, succeeded, failed, canceled },
    created_at: iso(data.created_at)!,
    ...(counts.started_at ? { started_at: iso(counts.started_at) } : {}),
    ...(finished && counts.completed_at ? { completed_at: iso(counts.completed_at) } : {}),
    ...(counts.canceled_at ? { canceled_at: iso(counts.canceled_at) } : {}),
    urls: { get: base, results: `${base}/results`, cancel: `${base}/cancel` },
  };
}
