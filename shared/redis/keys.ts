/**
 * Every Redis key and queue name ModelHub writes, in one place. All live under MODELHUB_PREFIX.
 * Renaming one strands what the previous release wrote: keep the old spelling readable (see
 * test/integration/upgrade.test.ts, which writes these keys literally as the previous release did).
 * BullMQ's own keys (a job's hash, its lock) are BullMQ's to name: shared/redis/bullmq-internals.ts.
 */

/**
 * BullMQ queue name of a model. The braces are a Redis Cluster hash tag: all keys of one queue
 * share a slot (BullMQ's scripts need that), while different models' queues spread over shards.
 */
export function modelQueueName(model: string): string {
  return `{model.${model}}`;
}

/** The queue of webhook events (delivered by the webhooks component). */
export const WEBHOOK_QUEUE = '{webhooks}';

/** Job id → its model and tenant, so GET /v1/jobs/:id finds the queue (and refuses other tenants). */
export function jobIndexKey(prefix: string, jobId: string): string {
  return `${prefix}:jobindex:${jobId}`;
}

/**
 * A coalesced predict entry's id → its model and each of its calls' tenant and trace (one key
 * for all its calls: api/jobs/job-index.ts). A call's own jobIndexKey, where there is one, wins.
 */
export function entryIndexKey(prefix: string, entryId: string): string {
  return `${prefix}:entryindex:${entryId}`;
}

/**
 * Who got a job first: a worker starting it ("running") or a cancel ("canceled"). It shares its
 * queue's hash slot, so the cancel's check of BullMQ's lock is one atomic script on a Cluster too.
 */
export function jobClaimKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:${modelQueueName(model)}:claim:${jobId}`;
}

/** An Idempotency-Key's record (→ its job), per tenant; `keyHash` is a hash of the client's key. */
export function idempotencyRecordKey(prefix: string, tenant: string | null, keyHash: string): string {
  return `${prefix}:idem:${tenant ?? '-'}:${keyHash}`;
}

/** Webhook delivery record of a job: attempts, last_status, delivered_at. */
export function webhookStatusKey(prefix: string, jobId: string): string {
  return `${prefix}:webhook:${jobId}`;
}

/** Hash of live workers' heartbeats. */
export function workerRegistryKey(prefix: string): string {
  return `${prefix}:workers`;
}

/**
 * The bulk lane of a model: batch chunks and batch parents, in a BullMQ queue of its own next to
 * the interactive one (same hash tag). Workers take a couple of chunks from it at a time, so bulk
 * work never takes the slots interactive jobs are fetched into (worker/item-intake.ts).
 */
export function bulkQueueName(model: string): string {
  return `{model.${model}}.bulk`;
}

/**
 * The predict lane of a model: coalesced predict entries (shared/predict/entry.ts), beside the
 * interactive queue (same hash tag). Only workers that read entries consume it, so a worker of an
 * earlier release never fetches one.
 */
export function predictQueueName(model: string): string {
  return `{model.${model}}.predict`;
}

/**
 * The inputs of a coalesced predict entry (entry payload v2, shared/predict/entry.ts): one JSON
 * string, item id → input, kept apart from the entry's BullMQ hash because every BullMQ script
 * that touches the entry (add, fetch, finish) costs Redis CPU per byte of its data. Same hash tag
 * as the model's queues; deleted by finish-entry.lua.
 */
export function entryInputsKey(prefix: string, model: string, entryId: string): string {
  return `${prefix}:${predictQueueName(model)}:inputs:${entryId}`;
}

/**
 * An API instance's finish notices (shared/jobs/finish-notices.ts): the Pub/Sub channel the
 * workers publish the answers of the calls this instance waits for on, so no instance hears
 * another's. A channel is no key: nothing is stored, and nothing outlives the instance.
 */
export function finishNoticesChannel(prefix: string, instance: string): string {
  return `${prefix}:notices:${instance}`;
}

/**
 * The previous release's finish notices: a stream per API instance, tagged with the instance id
 * (one slot per instance on a Cluster), trimmed on each append and expiring an hour after the last.
 * Only a worker telling an API of that release still appends to it.
 */
export function finishNoticesKey(prefix: string, instance: string): string {
  return `${prefix}:notices:{${instance}}`;
}

/** Batch id → its model and tenant, so GET /v1/batches/:id finds the bulk lane (and refuses other tenants). */
export function batchIndexKey(prefix: string, batchId: string): string {
  return `${prefix}:batchindex:${batchId}`;
}

/** A batch's moving parts, tagged with the batch id: on a Cluster each batch script touches one slot. */
export function batchKeys(prefix: string, batchId: string) {
  const base = `${prefix}:batch:{${batchId}}`;
  return {
    /** HASH: running, succeeded, failed, canceled, chunks_done, started_at, completed_at, canceled_at. */
    counts: `${base}:counts`,
    /** HASH chunk number → JSONL block of that chunk's result lines (written once). */
    results: `${base}:results`,
    /** LIST of chunk numbers in the order they finished (results in completion order). */
    done: `${base}:done`,
    /** HASH chunk number → when a worker first started it (a retry keeps it). */
    started: `${base}:started`,
    /** STRING: the staged items of one chunk, deleted once the chunk is done. */
    input: (chunk: number) => `${base}:in:${chunk}`,
  };
}

/** Written by /readyz (short PX): a readiness probe that a Redis refusing writes fails. */
export function readinessProbeKey(prefix: string): string {
  return `${prefix}:readyz`;
}

/**
 * A model's accounting (shared/jobs/accounting.ts, docs/exactness.md), in the queue's hash slot so
 * every script that moves a count touches one slot and declares every key it touches:
 * - `records`: HASH job id → the job's accounting record (its stage and what it counts);
 * - `usage`: HASH of counters, "w|<tenant>" waiting jobs, "s|<tenant>" stored bytes (inputs of
 *   jobs not yet finished plus retained results: the TENANT_MAX_STORED_BYTES quota), and
 *   "retained" (the model's retained result bytes, the JOB_RETENTION_BYTES bound);
 * - `retained`: ZSET "<id>|<bytes>|<tenant>" → finished at (ms), oldest first, beside BullMQ's
 *   completed set, so retention can also be bounded by bytes: the jobs' results (async jobs, and
 *   predict calls that ran as jobs of their own);
 * - `retainedCalls`: the same for coalesced predict calls' results, kept apart so a flood of
 *   predict calls cannot push out the async results their owners are still polling for, and
 *   each lane's finishes pay for pushing out its own results (docs/exactness.md, "Two retained sets");
 *   an entry's anonymous calls with no share are one member (`<entry>.a`), so the count bound
 *   counts their records, not each call;
 * - `reconciling`: held (SET NX PX) by the API replica reconciling the model this tick.
 */
export function accountingKeys(prefix: string, model: string) {
  const base = `${prefix}:${modelQueueName(model)}`;
  return {
    records: `${base}:acct`,
    /** Batch chunks' records (shared/batches/accounting.ts), in the same slot. */
    batchRecords: `${base}:bacct`,
    usage: `${base}:usage`,
    retained: `${base}:retained`,
    retainedCalls: `${base}:retained-calls`,
    reconciling: `${base}:reconciling`,
  };
}
