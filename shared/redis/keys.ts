/**
 * Every Redis key and queue name ModelHub writes, in one place. All live under MODELHUB_PREFIX.
 * Renaming one strands what the previous release wrote: keep the old spelling readable (see
 * test/integration/upgrade.test.ts, which writes these keys literally as the previous release did).
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
 * Who got a job first: a worker starting it ("running") or a cancel ("canceled"). It shares its
 * queue's hash slot, so the cancel's check of BullMQ's lock is one atomic script on a Cluster too.
 */
export function jobClaimKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:${modelQueueName(model)}:claim:${jobId}`;
}

/** BullMQ's own lock of a running job (held while a worker runs it, renewed, gone when it dies). */
export function jobLockKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:${modelQueueName(model)}:${jobId}:lock`;
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

/** Written by /readyz (short PX): a readiness probe that a Redis refusing writes fails. */
export function readinessProbeKey(prefix: string): string {
  return `${prefix}:readyz`;
}

/**
 * A tenant's count of jobs waiting in one model's queue (its quota). In the queue's hash slot, so
 * the run/cancel claim scripts decrement it atomically with the claim, on a Redis Cluster too.
 */
export function tenantWaitingKey(prefix: string, model: string, tenant: string | null): string {
  return `${prefix}:${modelQueueName(model)}:tenant:${tenant ?? '-'}:waiting`;
}
