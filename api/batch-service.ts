/**
 * The API's side of batches: stage an upload chunk by chunk, commit it as one BullMQ flow on the
 * model's bulk lane, read its progress and results, cancel what has not started. All state is
 * in Redis: any API replica answers for any batch, and an API restart loses nothing.
 */
import { createHash, randomUUID } from 'node:crypto';
import { FlowProducer, Queue } from 'bullmq';
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import {
  BATCH_PAYLOAD_VERSION,
  chunkJobId,
  type BatchData,
  type BatchWebhookEvent,
  type BulkJobData,
  type StagedItem,
} from '../shared/batches/payload.js';
import { batchView, unranLines, type BatchView, type ResultLine } from '../shared/batches/view.js';
import { batchLiveTtlS } from '../shared/jobs/retention.js';
import { finishChunk } from '../shared/redis/batch-chunks.js';
import { BatchAccounting } from '../shared/batches/accounting.js';
import { tenantLimits } from '../shared/options/tenancy.js';
import { batchIndexKey, batchKeys, bulkQueueName } from '../shared/redis/keys.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { ChunkStager } from './batch-upload.js';
import { IdempotencyKey, canonicalJson } from './idempotency.js';
import type { JobService } from './job-service.js';
import { storeCall, type StoreCall } from './store-call.js';
import { cleanUpOrRetry } from '../shared/redis/cleanup-retry.js';
import { bullTelemetry } from '../shared/tracing.js';

/** One item as read from the upload: a value to validate, or why it could not be read. */
export type RawItem = { value: unknown } | { error: SpecError };

export interface BatchOptions {
  tenant: string | null;
  /** 1 (first) .. 10 among batches; every batch ranks below every interactive job. */
  priority?: number;
  timeoutS?: number;
  webhook?: { url: string; events: BatchWebhookEvent[] };
  idempotencyKey?: string;
}

interface BatchIndexEntry {
  model: string;
  tenant: string | null;
}

const itemsQuota = (limit: number) =>
  new SpecError(
    'TENANT_QUOTA',
    `this tenant has ${limit} batch items in flight for this model (TENANT_MAX_BATCH_ITEMS); retry when some finish`,
    { 'Retry-After': '30' },
  ).withReason('tenant_batch_items');
const storedQuota = (limit: number) =>
  new SpecError(
    'TENANT_QUOTA',
    `this tenant stores ${limit} bytes for this model (TENANT_MAX_STORED_BYTES: inputs not yet finished, batches' included, and kept results); retry when some finish or delete finished jobs`,
    { 'Retry-After': '30' },
  ).withReason('tenant_stored_bytes');

/** Validations in flight while reading an upload (image headers are read asynchronously). */
const VALIDATION_WINDOW = 32;
/** Result blocks read per Redis call when streaming results. */
const RESULT_PAGE = 16;

export class BatchService {
  readonly queues = new Map<string, Queue<BulkJobData>>();
  readonly accounting: BatchAccounting;
  private readonly flows: FlowProducer;
  private readonly store: StoreCall;

  constructor(
    private readonly jobs: JobService,
    private readonly redis: RedisClient,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly validate: (model: string, value: unknown) => Promise<Record<string, unknown>>,
  ) {
    for (const name of jobs.queues.keys()) {
      const queue = new Queue<BulkJobData>(bulkQueueName(name), {
        connection: redis,
        prefix: config.MODELHUB_PREFIX,
        // Tracing on: what is done on the lane (a cancel's removals) joins the active trace.
        telemetry: bullTelemetry(),
      });
      queue.on('error', (err) => log.warn({ err: err.message, model: name }, 'bulk queue error'));
      this.queues.set(name, queue);
    }
    this.store = storeCall(log);
    this.accounting = new BatchAccounting(redis, config.MODELHUB_PREFIX, batchLiveTtlS(config));
    // Tracing on: the batch and each chunk carry the upload's trace context to the workers.
    this.flows = new FlowProducer({ connection: redis, prefix: config.MODELHUB_PREFIX, telemetry: bullTelemetry() });
    this.flows.on('error', (err) => log.warn({ err: err.message }, 'flow producer error'));
  }

  /** How long a batch's keys live while it may still run: retention plus the longest deadline. */
  private get liveTtlS(): number {
    return batchLiveTtlS(this.config);
  }

  /**
   * Stages `items` chunk by chunk and commits the batch. `bodyHash` identifies the upload for
   * Idempotency-Key (it is final once `items` is exhausted). Anything thrown before the commit
   * (a cut upload, a limit, Redis) deletes what was staged: nothing is queued.
   */
  async submit(
    model: string,
    items: AsyncIterable<RawItem>,
    bodyHash: () => string,
    options: BatchOptions,
  ): Promise<{ view: BatchView; replayed: boolean }> {
    this.jobs.runnableModel(model);
    const prefix = this.config.MODELHUB_PREFIX;
    const id = randomUUID();
    const keys = batchKeys(prefix, id);
    const ttl = this.liveTtlS;
    // Quotas: the tenant's batch items in flight and its stored bytes (shared with its jobs).
    const own = tenantLimits(this.config, options.tenant);
    const limits =
      options.tenant === null
        ? { maxBatchItems: 0, maxStoredBytes: 0 }
        : { maxBatchItems: own.maxBatchItems, maxStoredBytes: own.maxStoredBytes };
    await this.store(async () => {
      const [usage, stored] = await Promise.all([
        this.accounting.usage(model, options.tenant),
        this.jobs.accounting.usage(model, options.tenant),
      ]);
      // Refused before a byte of the upload is read when a quota is already reached.
      if (limits.maxBatchItems > 0 && usage.items >= limits.maxBatchItems) throw itemsQuota(limits.maxBatchItems);
      if (limits.maxStoredBytes > 0 && stored.storedBytes >= limits.maxStoredBytes)
        throw storedQuota(limits.maxStoredBytes);
    });
    const stager = new ChunkStager(
      Math.max(1, this.config.BATCH_CHUNK_SIZE),
      Math.max(1, this.config.BATCH_CHUNK_BYTES),
      async (chunk, json) => {
        // Counted first, then written: a crash in between leaves a record the reconciler gives back.
        const { verdict } = await this.store(() =>
          this.accounting.account(
            model,
            id,
            chunk,
            { items: stager.sizes[chunk], bytes: json.length, tenant: options.tenant },
            limits,
          ),
        );
        if (verdict === 'items') throw itemsQuota(limits.maxBatchItems);
        if (verdict === 'stored') throw storedQuota(limits.maxStoredBytes);
        await this.store(() => this.redis.set(keys.input(chunk), json, 'EX', ttl));
      },
    );
    let committed = false;
    // A commit that failed on Redis may still have been applied (a timed-out MULTI): then the
    // staged chunks are kept unless the batch is surely not stored.
    let maybeStored = false;
    try {
      const window: Promise<StagedItem>[] = [];
      let index = 0;
      for await (const raw of items) {
        window.push(this.stagedItem(model, index++, raw));
        if (window.length >= VALIDATION_WINDOW) await stager.add(await window.shift()!);
      }
      for (const p of window) await stager.add(await p);
      await stager.flush();
      if (stager.total === 0) throw new SpecError('INVALID_INPUT', 'a batch needs at least one input');

      const now = Date.now();
      const data: BatchData = {
        v: BATCH_PAYLOAD_VERSION,
        kind: 'batch',
        id,
        model,
        tenant: options.tenant,
        total: stager.total,
        chunks: stager.chunks,
        sizes: stager.sizes,
        created_at: now,
        ...(options.timeoutS ? { deadline_at: now + options.timeoutS * 1000 } : {}),
        ...(options.webhook ? { webhook: options.webhook } : {}),
      };
      const idem = options.idempotencyKey
        ? new IdempotencyKey(
            this.redis,
            prefix,
            options.tenant,
            options.idempotencyKey,
            this.requestHash(model, bodyHash(), options),
            this.config.JOB_RETENTION_S,
          )
        : null;
      if (idem && !(await this.store(() => idem.claim(id)))) {
        return { view: await idem.replay((batchId) => this.get(batchId, options.tenant)), replayed: true };
      }
      const queue = this.queues.get(model)!;
      let commitSent = false;
      try {
        const index: BatchIndexEntry = { model, tenant: options.tenant };
        await this.store(() => this.redis.set(batchIndexKey(prefix, id), JSON.stringify(index), 'EX', ttl));
        commitSent = true;
        await this.store(() => this.commit(data, stager.sizes, options.priority ?? 5));
        committed = true;
        await idem?.markStored(id);
      } catch (err) {
        // Only a commit that failed on Redis is ambiguous (a timed-out MULTI may have been applied).
        const ambiguous = commitSent && (!(err instanceof SpecError) || err.kind === 'STORE_UNAVAILABLE');
        const stored = committed
          ? true
          : ambiguous
            ? await queue.getJob(id).then(
                (j) => Boolean(j),
                () => null,
              )
            : false;
        maybeStored = stored !== false;
        await idem?.settleAfterFailure(stored);
        throw err;
      }
      return { view: batchView(data, {}), replayed: false };
    } finally {
      if (!committed) await this.discardStaged(model, id, stager.sizes.length, maybeStored);
    }
  }

  /**
   * A failed upload's staged chunks: their inputs deleted and their counts given back. When the
   * commit's outcome is unknown the batch is looked up first, and a stored one keeps its chunks
   * (it runs). Tried at once, and again in the background while Redis cannot be reached
   * (cleanUpOrRetry); past that the reconciler releases them once the upload bound has passed
   * (BatchAccounting.reconcile). Exactly once either way: every step is idempotent.
   */
  private async discardStaged(model: string, id: string, chunks: number, maybeStored: boolean): Promise<void> {
    const numbers = Array.from({ length: chunks }, (_, n) => n);
    const keys = batchKeys(this.config.MODELHUB_PREFIX, id);
    await cleanUpOrRetry(
      async () => {
        if (maybeStored && (await this.queues.get(model)!.getJob(id))) return;
        await Promise.all(numbers.map((n) => this.redis.del(keys.input(n))));
        await this.accounting.release(model, id, numbers);
      },
      (err) =>
        this.log.warn(
          { err: (err as Error).message, batch: id, model },
          'could not discard a failed upload; the reconciler will release it',
        ),
    );
  }

  private requestHash(model: string, bodyHash: string, options: BatchOptions): string {
    const normalized = { priority: options.priority ?? 5, timeout_s: options.timeoutS, webhook: options.webhook };
    return createHash('sha256')
      .update(canonicalJson(['batch', model, bodyHash, normalized]))
      .digest('hex');
  }

  /** One item, validated like a job's input; a bad one becomes a failed item, not a failed batch. */
  private async stagedItem(model: string, i: number, raw: RawItem): Promise<StagedItem> {
    const failed = (err: SpecError) => ({ i, error: { error_code: err.errorCode, error_msg: err.message } });
    if ('error' in raw) return failed(raw.error);
    try {
      return { i, input: await this.validate(model, raw.value) };
    } catch (err) {
      if (err instanceof SpecError) return failed(err);
      throw err;
    }
  }

  /**
   * The commit: one flow, written by BullMQ in a single MULTI. The parent (the batch) waits for
   * its chunks and then runs once on a worker, which sends batch.completed.
   */
  private async commit(data: BatchData, sizes: number[], priority: number): Promise<void> {
    const queueName = bulkQueueName(data.model);
    const retention = { age: this.config.JOB_RETENTION_S };
    let first = 0;
    const children = sizes.map((count, chunk) => {
      const child = {
        name: 'chunk',
        queueName,
        data: {
          v: BATCH_PAYLOAD_VERSION,
          kind: 'chunk' as const,
          batch: data.id,
          model: data.model,
          chunk,
          first,
          count,
          chunks: sizes.length,
          ...(data.deadline_at ? { deadline_at: data.deadline_at } : {}),
        },
        opts: {
          jobId: chunkJobId(data.id, chunk),
          priority,
          attempts: Math.max(1, this.config.JOB_ATTEMPTS),
          backoff: { type: 'exponential', delay: 500 },
          removeOnComplete: true,
          removeOnFail: retention,
          // A chunk that fails for good (e.g. it kept killing workers) must not hold the batch:
          // the parent still runs and reports that chunk's items as failed.
          ignoreDependencyOnFailure: true,
        },
      };
      first += count;
      return child;
    });
    await this.flows.add({
      name: 'batch',
      queueName,
      data,
      opts: { jobId: data.id, priority: 1, removeOnComplete: retention, removeOnFail: retention },
      children,
    });
  }

  private async readBatch(id: string, tenant: string | null): Promise<BatchData> {
    const raw = await this.redis.get(batchIndexKey(this.config.MODELHUB_PREFIX, id));
    const index = raw ? (JSON.parse(raw) as BatchIndexEntry) : null;
    // Another tenant's batch answers exactly like a missing one.
    if (!index || index.tenant !== tenant || !this.queues.has(index.model))
      throw new SpecError('JOB_NOT_FOUND', `no batch "${id}"`);
    const job = await this.queues.get(index.model)!.getJob(id);
    if (!job || job.data.kind !== 'batch') throw new SpecError('JOB_NOT_FOUND', `no batch "${id}"`);
    return job.data;
  }

  async get(id: string, tenant: string | null): Promise<BatchView> {
    return this.store(async () => {
      const data = await this.readBatch(id, tenant);
      return batchView(data, await this.redis.hgetall(batchKeys(this.config.MODELHUB_PREFIX, id).counts));
    });
  }

  /**
   * Writes the result lines finished so far as JSONL: in completion order (chunk by chunk, as
   * they were stored) or, with `inputOrder`, by index. Reads a few chunks per Redis call.
   */
  async results(
    id: string,
    tenant: string | null,
    inputOrder: boolean,
    write: (text: string) => Promise<void>,
  ): Promise<void> {
    const data = await this.store(() => this.readBatch(id, tenant));
    const keys = batchKeys(this.config.MODELHUB_PREFIX, id);
    const order = inputOrder
      ? Array.from({ length: data.chunks }, (_, n) => String(n))
      : await this.store(() => this.redis.lrange(keys.done, 0, -1));
    for (let i = 0; i < order.length; i += RESULT_PAGE) {
      const page = order.slice(i, i + RESULT_PAGE);
      const blocks = await this.store(() => this.redis.hmget(keys.results, ...page));
      let text = '';
      for (const block of blocks) {
        if (!block) continue;
        if (!inputOrder) text += `${block}\n`;
        else {
          const lines = block.split('\n').map((l) => [JSON.parse(l) as ResultLine, l] as const);
          lines.sort((a, b) => a[0].index - b[0].index);
          text += lines.map(([, l]) => `${l}\n`).join('');
        }
      }
      if (text) await write(text);
    }
  }

  /**
   * Cancels the items not yet started: marks the batch canceled (workers then skip its chunks)
   * and takes its waiting chunks off the queue. Items already running finish.
   */
  async cancel(id: string, tenant: string | null): Promise<BatchView> {
    const prefix = this.config.MODELHUB_PREFIX;
    return this.store(async () => {
      const data = await this.readBatch(id, tenant);
      const keys = batchKeys(prefix, id);
      const counts: Partial<Record<string, string>> = await this.redis.hgetall(keys.counts);
      if (counts.canceled_at) return batchView(data, counts);
      if (Number(counts.chunks_done ?? 0) >= data.chunks)
        throw new SpecError('CONFLICT', `batch "${id}" has already completed`);
      await this.redis
        .multi()
        .hsetnx(keys.counts, 'canceled_at', String(Date.now()))
        .expire(keys.counts, this.liveTtlS)
        .exec();
      const queue = this.queues.get(data.model)!;
      const done = new Set(await this.redis.hkeys(keys.results));
      let first = 0;
      for (const [chunk, count] of data.sizes.entries()) {
        first += count;
        // remove() answers 0 for a chunk a worker holds: it runs, or (seeing the cancel) skips it.
        if (done.has(String(chunk)) || (await queue.remove(chunkJobId(id, chunk))) !== 1) continue;
        const lines = unranLines(
          id,
          first - count,
          count,
          'canceled',
          new SpecError('CANCELED', 'the batch was canceled before this item ran'),
        );
        await finishChunk(
          this.redis,
          prefix,
          { model: data.model, batch: id, chunk, count, chunks: data.chunks },
          lines,
          this.liveTtlS,
        );
      }
      return batchView(data, await this.redis.hgetall(keys.counts));
    });
  }

  async close(): Promise<void> {
    await this.flows.close();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
