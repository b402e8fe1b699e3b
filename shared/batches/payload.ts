/**
 * What a batch puts on its model's bulk lane. A batch of T items is cut into chunks of up to
 * BATCH_CHUNK_SIZE items; each chunk's inputs are staged as one Redis value while the upload is
 * read, then the batch is committed as one BullMQ flow: a parent job (BatchData: the batch's
 * fixed description) with one child per chunk (ChunkData: which items). BullMQ writes a flow in
 * one MULTI, so a batch is queued whole or not at all; the parent runs once, after its chunks.
 * Both payloads carry a version, like jobs' (shared/jobs/payload.ts).
 */
import type { WebhookEvent } from '../jobs/payload.js';

export const BATCH_PAYLOAD_VERSION = 1;

export type BatchWebhookEvent = 'batch.completed';
export type AnyWebhookEvent = WebhookEvent | BatchWebhookEvent;

/** Data of a batch's parent job: what does not change while it runs. */
export interface BatchData {
  v: typeof BATCH_PAYLOAD_VERSION;
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

/** Data of one chunk job; its inputs are staged under batchKeys().input(chunk). */
export interface ChunkData {
  v: typeof BATCH_PAYLOAD_VERSION;
  kind: 'chunk';
  batch: string;
  model: string;
  chunk: number;
  /** Index of its first item; its items are first .. first + count - 1. */
  first: number;
  count: number;
  chunks: number;
  deadline_at?: number;
}

export type BulkJobData = BatchData | ChunkData;

/** One staged item: its validated input, or the spec error that failed it at upload (a malformed line). */
export type StagedItem =
  { i: number; input: Record<string, unknown> } | { i: number; error: { error_code: number; error_msg: string } };

export const chunkJobId = (batchId: string, chunk: number) => `${batchId}.${chunk}`;

/** request_id of one item's output or error. */
export const itemRequestId = (batchId: string, index: number) => `${batchId}.i${index}`;

/** A payload written by a newer release than this one. */
export class UnknownBatchVersionError extends Error {
  override name = 'UnknownBatchVersionError';
}

export function readBulkJobData(raw: BulkJobData): BulkJobData {
  // Read from Redis: a newer release may have written any version, an older one none.
  const version = raw.v as number | undefined;
  if ((version ?? 0) > BATCH_PAYLOAD_VERSION)
    throw new UnknownBatchVersionError(
      `batch payload version ${version} is newer than this release reads (${BATCH_PAYLOAD_VERSION}); upgrade this worker`,
    );
  return raw;
}
