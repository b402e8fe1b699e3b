/**
 * A coalesced predict entry: concurrent `predict` calls for one model that arrived within the
 * coalescing window (MODELHUB_PREDICT_COALESCE_MS) ride in one queue entry on the model's predict
 * lane, like a batch chunk carries its items on the bulk lane. Each item keeps what a job of its
 * own would have: its id (the call's request_id), tenant, deadline, trace, accounting record,
 * and its own answer or error in the entry's result.
 *
 * The entry lives on a queue of its own (predictQueueName), which only workers that read entries
 * consume: a worker of an earlier release never fetches one, so a mixed fleet loses no call.
 * The payload carries its own version; a newer one than a worker reads is refused by
 * `readEntryData` and retried by a worker that reads it.
 * - v1: each item's input inside the entry's data.
 * - v2: the inputs in a key of their own (entryInputsKey, written with the entry's accounting,
 *   deleted by finish-entry.lua), the items' `input` left empty: BullMQ's add of a 52 KB entry
 *   cost Redis 290 µs against 38 µs for a small one, and every fetch and finish paid per byte too.
 * The API writes v2 only while every live worker that reads entries for the model reads v2
 * (api/entry-fleet.ts), so in a rolling upgrade no worker of the previous release is handed one.
 */
import type { JobResult } from '../jobs/payload.js';

/** The newest entry payload this release writes and reads. */
export const ENTRY_PAYLOAD_VERSION = 2;
/** The first payload version whose inputs live apart (entryInputsKey). */
export const ENTRY_INPUTS_APART_VERSION = 2;
/** The version of an entry's result (unchanged by v2 payloads). */
export const ENTRY_RESULT_VERSION = 1;

export interface EntryItem {
  /** The call's id (its request_id, its accounting record's field): predictItemId(entry, k). */
  id: string;
  tenant: string | null;
  input: Record<string, unknown>;
  /** Epoch ms; an item not started by then fails alone with DEADLINE_EXCEEDED. */
  deadline_at?: number;
  /** The OpenTelemetry trace the call came in (tracing on). */
  trace_id?: string;
  /** Its W3C traceparent, so the item's run joins its own trace. */
  traceparent?: string;
  /**
   * Counted in its tenant's waiting jobs (a max_waiting quota): the worker that starts the entry
   * moves its record out of that count (claim-entry-for-run.lua). Only read when the entry has
   * `marks_waiting`.
   */
  counted_waiting?: true;
}

/** What the API queues: the items of one window, in the order they were filled. */
export interface EntryData {
  v: number;
  kind: 'entry';
  model: string;
  items: EntryItem[];
  /** Kept empty so readers of job payloads (tenant, input) find nothing to count on the entry itself. */
  tenant: null;
  input: Record<string, never>;
  /** The API instance whose calls these are: the worker sends it the entry's finish notice. */
  reply_to?: string;
  /**
   * Its items counted as waiting carry `counted_waiting`, and only those are claimed. An entry
   * without it (written by an earlier API) has every item claimed: the claim moves only records
   * counted as waiting either way, so this only spares a script when none is.
   */
  marks_waiting?: true;
  /** Set once a v1 entry finished: its items' inputs were dropped from its data. */
  input_dropped?: boolean;
}

/** A v2 entry's inputs, as stored under entryInputsKey: item id → input. */
export type EntryInputs = Partial<Record<string, Record<string, unknown>>>;

/** One item's end: its output and per-item metrics, or its spec error (SpecError.toReason()). */
export type EntryItemResult =
  { id: string; output: JobResult['output']; metrics: ItemMetrics } | { id: string; error: string };

export interface ItemMetrics {
  inference_ms: number;
  preprocess_ms: number;
  batch_size: number;
}

/** What a worker returns for an entry: one result per item, in item order. */
export interface EntryResult {
  v: number;
  items: EntryItemResult[];
  metrics: Omit<JobResult['metrics'], 'inference_ms' | 'preprocess_ms' | 'batch_size'> & { entry_items: number };
}

/** An item's id: the entry's id and its place (request_ids are opaque to clients). */
export const predictItemId = (entryId: string, k: number) => `${entryId}.p${k}`;

const ITEM_ID = /^(.+)\.p(\d+)$/;

/** The entry and place of an item id, or null for any other id (a job's). */
export function entryOfItem(id: string): { entry: string; item: number } | null {
  const m = ITEM_ID.exec(id);
  return m ? { entry: m[1], item: Number(m[2]) } : null;
}

/**
 * The accounting record of an entry's anonymous calls with no share, `<entry>.a`: one for all of
 * them instead of one per call (shared/redis/finish-entry.lua).
 */
export const anonymousCallsRecordId = (entryId: string) => `${entryId}.a`;

const ANONYMOUS_CALLS_ID = /^(.+)\.a$/;

/**
 * The entry an accounting record stands for: an item's (`<entry>.p<k>`) or its anonymous calls'
 * (`<entry>.a`); null for a job's record.
 */
export function entryOfRecord(id: string): string | null {
  return entryOfItem(id)?.entry ?? ANONYMOUS_CALLS_ID.exec(id)?.[1] ?? null;
}

/**
 * Bytes an item's result is counted as in its tenant's stored bytes: its JSON inside the entry's
 * result (what the checker recomputes from the stored entry; 0 for an error: a failed job keeps
 * nothing either).
 */
export function itemResultBytes(result: EntryItemResult): number {
  return 'error' in result ? 0 : JSON.stringify(result).length;
}

/**
 * The items a worker starting the entry claims (claim-entry-for-run.lua): those it marks as
 * counted as waiting, or every item of an entry that marks none (an earlier API's).
 */
export function itemsToClaim(data: EntryData): EntryItem[] {
  return data.marks_waiting ? data.items.filter((it) => it.counted_waiting) : data.items;
}

/** A payload written by a newer release than this one: left for a worker that reads it. */
export class UnknownEntryVersionError extends Error {
  override name = 'UnknownEntryVersionError';
}

export function readEntryData(raw: EntryData): EntryData {
  if (raw.v > ENTRY_PAYLOAD_VERSION)
    throw new UnknownEntryVersionError(
      `predict entry version ${raw.v} is newer than this release reads (${ENTRY_PAYLOAD_VERSION}); upgrade this worker`,
    );
  return raw;
}
