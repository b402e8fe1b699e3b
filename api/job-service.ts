/**
 * The API's side of the queues: enqueue validated jobs (idempotently, with backpressure and
 * per-tenant quotas), find them again by id (per tenant), wait for them (job-finish-events.ts),
 * cancel queued ones, delete finished ones.
 */
import { randomUUID } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ModelEntry } from '../shared/manifest.js';
import { JOB_PAYLOAD_VERSION, type JobData, type JobResult, type WebhookEvent } from '../shared/jobs/payload.js';
import { defaultJobOptions, sideKeyTtlS } from '../shared/jobs/retention.js';
import { JobAccounting, inputBytesOf } from '../shared/jobs/accounting.js';
import type { RedisClient } from '../shared/redis/connection.js';
import {
  WEBHOOK_QUEUE,
  jobIndexKey,
  modelQueueName,
  predictQueueName,
  webhookStatusKey,
} from '../shared/redis/keys.js';
import type { EntryData, EntryResult } from '../shared/predict/entry.js';
import { itemView } from '../shared/predict/view.js';
import {
  canceledView,
  completedView,
  failedView,
  jobView,
  readJobFacts,
  readJobView,
  withTraceId,
  type JobView,
} from '../shared/job-view.js';
import { enqueueWebhookEvent, webhookJobOptions, type WebhookJobData } from '../shared/webhooks/events.js';
import { webhookOptions } from '../shared/webhooks/options.js';
import { IdempotencyKey } from './idempotency.js';
import { JobFinishEvents, type Finish } from './job-finish-events.js';
import { FinishWaits } from './finish-waits.js';
import { WaitingCount } from './waiting-count.js';
import { ImageJobQueue } from './image-job-queue.js';
import { tenantLimits } from '../shared/tenant-limits.js';
import { ATTR, SpanKind, activeTraceId, bullTelemetry, inSpan } from '../shared/tracing.js';

/** Points where a test forces an interleaving with a worker (never set in production). */
export interface JobServiceHooks {
  /** Between a cancel's read of the job's state and its claim. */
  beforeCancelClaim?: (jobId: string) => Promise<void>;
}

export interface SubmitOptions {
  tenant: string | null;
  priority?: number;
  timeoutS?: number;
  webhook?: { url: string; events: WebhookEvent[] };
  /** Client's Idempotency-Key and a hash of the request it came with. */
  idempotency?: { key: string; requestHash: string };
  /**
   * Wait up to this many seconds for the job to finish and answer its finished view (predict,
   * `Prefer: wait`). The wait is armed before the job is added, so its completion event is
   * never missed and the result comes from the event: nothing is read back to find out.
   */
  waitS?: number;
  /**
   * Predict: the caller answers with the spec output alone, so a job that completes or fails
   * while waited for is not read back (no timestamps are needed); its view comes from the event.
   */
  outputOnly?: boolean;
}

export interface SubmitResult {
  view: JobView;
  /** True when an Idempotency-Key replay returned an existing job. */
  replayed: boolean;
}

export interface JobIndexEntry {
  model: string;
  tenant: string | null;
  created_at: number;
  /** The job's deadline (null: none), so its view is read without its data. Absent in entries written before 0.2. */
  deadline_at?: number | null;
  canceled_at?: number;
  /** Whether the job has a webhook (its delivery record is shown on the job). */
  webhook?: boolean;
  /** The job's trace (tracing on when it was submitted). */
  trace_id?: string;
  /** A coalesced predict call: the entry it rides in on the model's predict lane (shared/predict/entry.ts). */
  entry?: string;
}

export class JobService {
  readonly queues = new Map<string, Queue<JobData, JobResult>>();
  readonly webhooks: Queue<WebhookJobData>;
  /** Each job's accounting record and its tenant's counts (shared/jobs/accounting.ts). */
  readonly accounting: JobAccounting;
  /** Waits on jobs submitted elsewhere (GET with `Prefer: wait`): BullMQ's QueueEvents. */
  readonly finishes: JobFinishEvents;
  /** Waits on jobs this instance submitted: notices sent to this instance alone. */
  readonly waits: FinishWaits;
  /** Each model's predict lane (coalesced predict entries), on the read connection. */
  private readonly predictReadQueues = new Map<string, Queue<EntryData, EntryResult>>();
  /** Backpressure per model (QUEUE_MAX_WAITING), read from Redis at most once a second when far from the limit. */
  private readonly waiting = new Map<string, WaitingCount>();

  /**
   * Reads (GET, polls, waits) go through their own connection and queue objects: a large job
   * being read must not hold up the connection that submits (Redis answers one connection's
   * commands in order).
   */
  private readonly readQueues = new Map<string, Queue<JobData, JobResult>>();

  constructor(
    private readonly models: Map<string, ModelEntry>,
    private readonly redis: RedisClient,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly reader: RedisClient = redis,
    private readonly hooks: JobServiceHooks = {},
  ) {
    this.accounting = new JobAccounting(redis, config.MODELHUB_PREFIX, {
      ttlS: sideKeyTtlS(config),
      retention: config,
    });
    for (const name of models.keys()) {
      if (reader !== redis) {
        const readQueue = new Queue<JobData, JobResult>(modelQueueName(name), {
          connection: reader,
          prefix: config.MODELHUB_PREFIX,
        });
        readQueue.on('error', (err) => log.warn({ err: err.message, model: name }, 'queue error (reads)'));
        this.readQueues.set(name, readQueue);
      }
      const predictRead = new Queue<EntryData, EntryResult>(predictQueueName(name), {
        connection: reader,
        prefix: config.MODELHUB_PREFIX,
      });
      predictRead.on('error', (err) => log.warn({ err: err.message, model: name }, 'predict lane error (reads)'));
      this.predictReadQueues.set(name, predictRead);
      // Adds store a large image without re-encoding it on the event loop (image-job-queue.ts).
      const queue = new ImageJobQueue<JobData, JobResult>(modelQueueName(name), {
        connection: redis,
        prefix: config.MODELHUB_PREFIX,
        defaultJobOptions: defaultJobOptions(config),
        // Tracing on: each job carries its trace context (bullmq-otel) to the worker.
        telemetry: bullTelemetry(),
      });
      queue.on('error', (err) => log.warn({ err: err.message, model: name }, 'queue error'));
      this.queues.set(name, queue);
      this.waiting.set(
        name,
        new WaitingCount({
          limit: config.QUEUE_MAX_WAITING,
          read: () => queue.getJobCountByTypes('waiting', 'prioritized', 'delayed'),
        }),
      );
    }
    this.finishes = new JobFinishEvents(config, log);
    this.waits = new FinishWaits(config, log);
    this.webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
      connection: redis,
      prefix: config.MODELHUB_PREFIX,
      defaultJobOptions: webhookJobOptions(webhookOptions(config)),
      telemetry: bullTelemetry(),
    });
    this.webhooks.on('error', (err) => log.warn({ err: err.message }, 'webhook queue error'));
  }

  model(name: string): ModelEntry {
    const entry = this.models.get(name);
    if (!entry) throw new SpecError('MODEL_NOT_FOUND', `unknown model "${name}"`);
    return entry;
  }

  async submit(model: string, input: Record<string, unknown>, options: SubmitOptions): Promise<SubmitResult> {
    const entry = this.model(model);
    if (!entry.modelPath)
      throw new SpecError('MODEL_UNAVAILABLE', `model "${model}" is unavailable: its model file is not installed`);
    const id = randomUUID();
    const waitS = options.waitS ?? 0;
    // Armed before the job exists: its notice cannot slip past between add and listen. Without a
    // notice (lost, or a worker that sends none) the job is read back once it has been added.
    let added = false;
    const finish =
      waitS > 0
        ? this.waits.watch(id, waitS * 1000, async () => {
            if (!added) return false;
            const view = await readJobView(this.readQueue(model), id, { model, redis: this.reader });
            return !view || (view.status !== 'queued' && view.status !== 'running');
          })
        : null;
    let result: SubmitResult;
    try {
      result = await inSpan(
        'enqueue',
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            [ATTR.messagingSystem]: 'bullmq',
            [ATTR.messagingDestination]: modelQueueName(model),
            [ATTR.messagingOperationType]: 'send',
            [ATTR.messagingOperationName]: 'enqueue',
            [ATTR.messagingMessageId]: id,
            [ATTR.model]: model,
          },
        },
        () => this.add(model, id, input, options, finish ? this.waits.instance : undefined),
      );
      added = true;
    } catch (err) {
      finish?.cancel();
      throw err;
    }
    if (waitS <= 0) return result;
    if (result.replayed || !finish) {
      finish?.cancel();
      return { ...result, view: await this.waitFor(result.view.id, options.tenant, waitS) };
    }
    const outcome = await inSpan(
      'wait',
      { attributes: { [ATTR.jobId]: id, 'modelhub.wait_s': waitS } },
      () => finish.done,
    );
    return { ...result, view: await this.finishedView(result.view, options, outcome) };
  }

  /**
   * The finished job's view from its event: a completed or failed job is read back once (its
   * timestamps), without the index and state look-ups; anything else (removed: canceled, the
   * wait timed out, a webhook's delivery record to show) takes the full read.
   */
  private async finishedView(submitted: JobView, options: SubmitOptions, outcome: Finish | null): Promise<JobView> {
    if (!outcome || outcome.event === 'removed' || options.webhook) return this.get(submitted.id, options.tenant);
    if (options.outputOnly)
      return outcome.event === 'completed'
        ? completedView(submitted, outcome.returnvalue)
        : failedView(submitted, outcome.failedReason);
    return this.withStore(async () => {
      // Finished: its deadline no longer matters to its status, and its input is not read.
      const facts = await readJobFacts(this.reader, this.readQueue(submitted.model), submitted.id, {
        model: submitted.model,
        ...(submitted.trace_id ? { trace_id: submitted.trace_id } : {}),
      });
      return facts ? jobView(facts, outcome.event) : this.get(submitted.id, options.tenant);
    });
  }

  private async add(
    model: string,
    id: string,
    input: Record<string, unknown>,
    options: SubmitOptions,
    replyTo?: string,
  ): Promise<SubmitResult> {
    const queue = this.queues.get(model)!;
    const prefix = this.config.MODELHUB_PREFIX;
    const now = Date.now();
    // A tenant's inputs count in its stored bytes until the job finishes (its quota).
    const limits = tenantLimits(this.config, options.tenant);
    const storedQuota = options.tenant !== null ? limits.maxStoredBytes : 0;
    const inputBytes = storedQuota > 0 ? inputBytesOf(input) : 0;
    // Shown on the job's view, so a user can hand it to an operator (tracing on only).
    const traceId = activeTraceId();
    const data: JobData = {
      v: JOB_PAYLOAD_VERSION,
      model,
      input,
      tenant: options.tenant,
      ...(options.timeoutS ? { deadline_at: now + options.timeoutS * 1000 } : {}),
      ...(options.webhook ? { webhook: options.webhook } : {}),
      ...(traceId ? { trace_id: traceId } : {}),
      ...(replyTo ? { reply_to: replyTo } : {}),
    };
    return this.withStore(async () => {
      const idem = options.idempotency
        ? new IdempotencyKey(
            this.redis,
            prefix,
            options.tenant,
            options.idempotency.key,
            options.idempotency.requestHash,
            this.config.JOB_RETENTION_S,
          )
        : null;
      if (idem && !(await idem.claim(id)))
        return { view: await idem.replay((jobId) => this.get(jobId, options.tenant)), replayed: true };
      let indexed = false;
      let adding = false;
      try {
        const waiting = await this.waiting.get(model)!.current();
        if (waiting >= this.config.QUEUE_MAX_WAITING) {
          throw new SpecError('QUEUE_FULL', `model "${model}" has ${waiting} jobs waiting; try again later`, {
            'Retry-After': '5',
          });
        }
        const index: JobIndexEntry = {
          model,
          tenant: options.tenant,
          created_at: now,
          deadline_at: data.deadline_at ?? null,
          ...(options.webhook ? { webhook: true } : {}),
          ...(traceId ? { trace_id: traceId } : {}),
        };
        // The job's accounting record (its quota check with it) and its index entry, sent together.
        const share = { countWaiting: options.tenant !== null && limits.maxWaiting > 0, inputBytes };
        const [counted] = await Promise.all([
          this.accounting.submit(model, id, options.tenant, share, {
            maxWaiting: limits.maxWaiting,
            maxStoredBytes: storedQuota,
          }),
          this.redis.set(jobIndexKey(prefix, id), JSON.stringify(index), 'EX', sideKeyTtlS(this.config)),
        ]);
        indexed = true;
        if (counted.verdict === 'waiting') {
          throw new SpecError(
            'TENANT_QUOTA',
            `you have ${counted.waiting} jobs waiting for model "${model}" (the limit is ${limits.maxWaiting}); try again later`,
            { 'Retry-After': '5' },
          ).withReason('tenant_waiting');
        }
        if (counted.verdict === 'stored') {
          throw new SpecError(
            'TENANT_QUOTA',
            `your jobs for model "${model}" hold ${counted.storedBytes} bytes of inputs and results (the limit is ${storedQuota}); delete finished jobs (DELETE /v1/jobs/{id}) or try again later`,
            { 'Retry-After': '30' },
          ).withReason('tenant_stored_bytes');
        }
        adding = true;
        // BullMQ priority: 1 is highest, as in the API.
        const job = await queue.add('infer', data, { jobId: id, timestamp: now, priority: options.priority ?? 5 });
        this.waiting.get(model)!.added();
        await idem?.markStored(id);
        return { view: jobView(job, 'waiting'), replayed: false };
      } catch (err) {
        // Only an add that failed on Redis is ambiguous (a timed-out add may have been stored):
        // then the record stays, and the reconciler gives it back if the job never appears.
        const stored =
          adding && !(err instanceof SpecError)
            ? await queue.getJob(id).then(
                (j) => Boolean(j),
                () => null,
              )
            : false;
        if (stored === false) {
          // The index entry of a job that surely was not stored would point at nothing for a day.
          if (indexed) await this.redis.del(jobIndexKey(prefix, id)).catch(() => undefined);
          await this.accounting.release(model, id).catch(() => undefined);
        }
        await idem?.settleAfterFailure(stored);
        throw err;
      }
    });
  }

  /** Refuses (429 QUEUE_FULL) when the model's queue holds QUEUE_MAX_WAITING jobs; `added` counts what this call adds. */
  async checkWaiting(model: string, added = 0): Promise<void> {
    const count = this.waiting.get(model)!;
    const waiting = await count.current();
    if (waiting >= this.config.QUEUE_MAX_WAITING) {
      throw new SpecError('QUEUE_FULL', `model "${model}" has ${waiting} jobs waiting; try again later`, {
        'Retry-After': '5',
      });
    }
    for (let i = 0; i < added; i++) count.added();
  }

  /** Each model's queue on the read connection (queue gauges are refreshed through these). */
  readQueueEntries(): [string, Queue<JobData, JobResult>][] {
    return [...this.queues.keys()].map((name) => [name, this.readQueue(name)]);
  }

  private readQueue(model: string): Queue<JobData, JobResult> {
    return this.readQueues.get(model) ?? this.queues.get(model)!;
  }

  private async readIndex(id: string, tenant: string | null): Promise<JobIndexEntry> {
    const raw = await this.reader.get(jobIndexKey(this.config.MODELHUB_PREFIX, id));
    const index = raw ? (JSON.parse(raw) as JobIndexEntry) : null;
    // Another tenant's job answers exactly like a missing one.
    if (!index || index.tenant !== tenant || !this.queues.has(index.model))
      throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
    return index;
  }

  /** The job's view, reading only the fields it needs when the index knows the job's deadline. */
  private async readView(index: JobIndexEntry, id: string): Promise<JobView | null> {
    if (index.entry) {
      // A coalesced predict call: its entry's state, its own result.
      const queue = this.predictReadQueues.get(index.model)! as unknown as Queue<JobData, JobResult>;
      const known = { model: index.model, ...(index.trace_id ? { trace_id: index.trace_id } : {}) };
      const facts = await readJobFacts(this.reader, queue, index.entry, known);
      return facts ? withTraceId(itemView(facts, id), index.trace_id) : null;
    }
    const known =
      index.deadline_at !== undefined
        ? {
            model: index.model,
            deadline_at: index.deadline_at ?? undefined,
            redis: this.reader,
            ...(index.trace_id ? { trace_id: index.trace_id } : {}),
          }
        : undefined;
    return readJobView(this.readQueue(index.model), id, known);
  }

  async get(id: string, tenant: string | null): Promise<JobView> {
    return this.withStore(async () => {
      const index = await this.readIndex(id, tenant);
      const view = await this.readView(index, id);
      // A canceled job is gone from its queue, or (for a moment) held by a worker that lost the
      // claim and is about to drop it unrun: either way it reads canceled.
      if (index.canceled_at && (!view || view.status === 'queued' || view.status === 'running')) {
        return withTraceId(canceledView(id, index.model, index.created_at, index.canceled_at), index.trace_id);
      }
      if (!view) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      if (index.webhook) {
        const w: Partial<Record<string, string>> = await this.reader.hgetall(
          webhookStatusKey(this.config.MODELHUB_PREFIX, id),
        );
        view.webhook = {
          attempts: Number(w.attempts ?? 0),
          last_status: w.last_status ?? null,
          delivered_at: w.delivered_at ?? null,
        };
      }
      return view;
    });
  }

  /** Waits up to `seconds` for the job to finish (QueueEvents: no polling), then returns its view. */
  async waitFor(id: string, tenant: string | null, seconds: number): Promise<JobView> {
    const index = await this.withStore(() => this.readIndex(id, tenant));
    if (seconds > 0 && !index.canceled_at)
      await inSpan('wait', { attributes: { [ATTR.jobId]: id, 'modelhub.wait_s': seconds } }, () =>
        this.untilFinished(index, id, seconds * 1000),
      );
    return this.get(id, tenant);
  }

  /** Resolves when the job finishes, is removed, or `ttlMs` passes; never rejects (a failed read counts as done: the caller's read reports it). */
  private untilFinished(index: JobIndexEntry, id: string, ttlMs: number): Promise<void> {
    const isDone = async () => {
      try {
        const view = await this.readView(index, id);
        return !view || (view.status !== 'queued' && view.status !== 'running');
      } catch {
        return true;
      }
    };
    // A coalesced predict call finishes with its entry, on the model's predict lane.
    if (index.entry) return this.finishes.until(index.model, index.entry, ttlMs, isDone, predictQueueName(index.model));
    return this.finishes.until(index.model, id, ttlMs, isDone);
  }

  /**
   * Cancels a queued job: it never runs. A running job is left to finish and a finished one
   * is left as it is (both 409); canceling twice answers the canceled job again. A queued job
   * whose deadline passed (it reads as failed, but sits in the queue until a worker drops it) is
   * canceled too: where no worker serves its model it would otherwise hold its tenant's waiting
   * count and stored bytes for ever.
   */
  async cancel(id: string, tenant: string | null): Promise<JobView> {
    const prefix = this.config.MODELHUB_PREFIX;
    return this.withStore(async () => {
      const index = await this.readIndex(id, tenant);
      if (index.canceled_at) return canceledView(id, index.model, index.created_at, index.canceled_at);
      // A predict call answers its caller within its wait: nothing is left to cancel for anyone else.
      if (index.entry) throw new SpecError('CONFLICT', `"${id}" is a predict call; it cannot be canceled`);
      const queue = this.queues.get(index.model)!;
      const job = await queue.getJob(id);
      if (!job) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      const state = await job.getState();
      if (state === 'completed' || state === 'failed')
        throw new SpecError('CONFLICT', `job "${id}" has already finished`);
      // Settled in one atomic script against a worker starting, finishing or holding the job:
      // the state read above may already be stale.
      await this.hooks.beforeCancelClaim?.(id);
      const claim = await this.accounting.claimForCancel(index.model, id);
      if (claim === 'running') throw new SpecError('CONFLICT', `job "${id}" is running; it will finish`);
      if (claim === 'finished') throw new SpecError('CONFLICT', `job "${id}" has already finished`);
      if (claim === 'gone') throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      const canceled: JobIndexEntry = { ...index, canceled_at: Date.now() };
      await this.redis.set(jobIndexKey(prefix, id), JSON.stringify(canceled), 'KEEPTTL');
      try {
        await job.remove();
      } catch (err) {
        // Locked by a worker that lost the claim: it fails the job as canceled without running it.
        this.log.debug({ err: (err as Error).message, jobId: id }, 'canceled job not removed; its worker will drop it');
      }
      const view = canceledView(id, index.model, index.created_at, canceled.canceled_at!);
      await enqueueWebhookEvent(
        this.webhooks,
        { id, model: index.model, webhook: job.data.webhook },
        'completed',
        view,
      );
      return view;
    });
  }

  /**
   * Deletes a finished job (its input, output and side keys) for its tenant; afterwards it reads
   * as not found. A queued or running job is not deleted (409: cancel it first), except a queued
   * one whose deadline passed: it has failed already, so it is claimed as canceled (never to run)
   * and deleted.
   */
  async remove(id: string, tenant: string | null): Promise<{ id: string; deleted: true }> {
    const prefix = this.config.MODELHUB_PREFIX;
    return this.withStore(async () => {
      const index = await this.readIndex(id, tenant);
      if (index.entry) return this.removeItem(index, id);
      const queue = this.queues.get(index.model)!;
      const state = await queue.getJobState(id);
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown' && !index.canceled_at) {
        const deadline = index.deadline_at ?? (await queue.getJob(id))?.data.deadline_at;
        if (deadline === undefined || Date.now() <= deadline)
          throw new SpecError('CONFLICT', `job "${id}" has not finished; cancel it first`);
        // Expired while queued: the same atomic claim as a cancel, so a worker cannot start it now.
        const claim = await this.accounting.claimForCancel(index.model, id);
        if (claim === 'running') throw new SpecError('CONFLICT', `job "${id}" is running; it will finish`);
      }
      // The job first, then what its record held: a crash in between leaves a record without a
      // job, which the reconciler gives back; the other order would leave a job counted nowhere.
      if (state !== 'unknown') await queue.remove(id);
      await this.accounting.release(index.model, id);
      // One key per command: on a Redis Cluster these live in different slots.
      await Promise.all([jobIndexKey(prefix, id), webhookStatusKey(prefix, id)].map((k) => this.redis.del(k)));
      return { id, deleted: true as const };
    });
  }

  /**
   * Deletes a coalesced predict call once its entry finished: its record gives back what it held
   * and its index goes, so it reads as not found. Its result stays inside the shared entry (not
   * readable through the API any more) until the entry's retention removes it.
   */
  private async removeItem(index: JobIndexEntry, id: string): Promise<{ id: string; deleted: true }> {
    const view = await this.readView(index, id);
    if (view && (view.status === 'queued' || view.status === 'running'))
      throw new SpecError('CONFLICT', `job "${id}" has not finished`);
    await this.accounting.release(index.model, id);
    await this.redis.del(jobIndexKey(this.config.MODELHUB_PREFIX, id));
    return { id, deleted: true as const };
  }

  /**
   * Runs a Redis-backed step; a Redis failure becomes a 503 spec error rather than a hang or a
   * 500. The client gets a generic message; Redis's own (which can name scripts, keys, memory
   * state) goes to the log only.
   */
  async withStore<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SpecError) throw err;
      this.log.warn({ err: (err as Error).message }, 'job store call failed');
      throw new SpecError('STORE_UNAVAILABLE', 'the job store is unavailable; try again shortly', {
        'Retry-After': '2',
      });
    }
  }

  /** Set by close(): waits end at once and no new event streams are opened. */
  get closing(): boolean {
    return this.finishes.closing;
  }

  async close(): Promise<void> {
    await this.finishes.close();
    await this.waits.close();
    await Promise.all(
      [...this.queues.values(), ...this.readQueues.values(), ...this.predictReadQueues.values(), this.webhooks].map(
        (q) => q.close(),
      ),
    );
  }
}

export type { Job };
