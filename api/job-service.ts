/**
 * The API's side of the queues, as one service the routes hold: it builds the job modules
 * (api/jobs/) and answers through them.
 * - job-queues.ts: the model lookup and each model's queues;
 * - submit-quotas.ts: backpressure and the tenants' quotas;
 * - job-index.ts: job id → model and tenant;
 * - job-submit.ts: enqueue (idempotently), and wait for the job when asked;
 * - job-reads.ts / job-waits.ts: a job's view, now or once it finished;
 * - job-removal.ts: cancel queued jobs, delete finished ones.
 * Their Redis failures become 503s through the one store-call wrapper (store-call.ts).
 */
import type { Queue } from 'bullmq';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { ModelEntry } from '../shared/manifest.js';
import type { JobData, JobResult } from '../shared/jobs/payload.js';
import { defaultJobOptions, sideKeyTtlS } from '../shared/jobs/retention.js';
import { JobAccounting } from '../shared/jobs/accounting.js';
import type { JobView } from '../shared/job-view.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { webhookJobOptions, type WebhookJobData } from '../shared/webhooks/events.js';
import { webhookOptions } from '../shared/webhooks/options.js';
import type { FinishWaits } from './finish-waits.js';
import type { JobFinishEvents } from './job-finish-events.js';
import { storeCall } from './store-call.js';
import { JobIndex } from './jobs/job-index.js';
import { JobQueues } from './jobs/job-queues.js';
import { JobReads } from './jobs/job-reads.js';
import { JobRemoval, type JobServiceHooks } from './jobs/job-removal.js';
import { JobSubmitter, type SubmitOptions, type SubmitResult } from './jobs/job-submit.js';
import { JobWaits } from './jobs/job-waits.js';
import { SubmitQuotas, submitQuotaOptions } from './jobs/submit-quotas.js';

export type { JobIndexEntry } from './jobs/job-index.js';
export type { JobServiceHooks } from './jobs/job-removal.js';
export type { SubmitOptions, SubmitResult } from './jobs/job-submit.js';

export class JobService {
  /** Each job's accounting record and its tenant's counts (shared/jobs/accounting.ts). */
  readonly accounting: JobAccounting;
  readonly index: JobIndex;
  readonly quotas: SubmitQuotas;
  private readonly all: JobQueues;
  private readonly reads: JobReads;
  private readonly waiting: JobWaits;
  private readonly submitter: JobSubmitter;
  private readonly removal: JobRemoval;

  constructor(
    models: Map<string, ModelEntry>,
    redis: RedisClient,
    config: Config,
    log: Logger,
    /** The read connection (tests measure what a poll transfers on it). */
    readonly reader: RedisClient = redis,
    hooks: JobServiceHooks = {},
  ) {
    const prefix = config.MODELHUB_PREFIX;
    const store = storeCall(log);
    this.accounting = new JobAccounting(redis, prefix, { ttlS: sideKeyTtlS(config), retention: config });
    this.all = new JobQueues(
      models,
      redis,
      reader,
      {
        prefix,
        jobOptions: defaultJobOptions(config),
        webhookJobOptions: webhookJobOptions(webhookOptions(config)),
      },
      log,
    );
    this.index = new JobIndex(redis, reader, {
      prefix,
      ttlS: sideKeyTtlS(config),
      serves: (model) => this.all.byModel.has(model),
    });
    this.quotas = new SubmitQuotas(this.accounting, submitQuotaOptions(config), (model) =>
      this.all.queue(model).getJobCountByTypes('waiting', 'prioritized', 'delayed'),
    );
    this.reads = new JobReads(this.all, this.index, reader, prefix, store);
    this.waiting = new JobWaits(config, log, this.index, this.reads, store);
    const { all: queues, index, quotas, accounting, reads, waiting: waits } = this;
    this.submitter = new JobSubmitter({
      queues,
      index,
      quotas,
      accounting,
      reads,
      waits,
      store,
      redis,
      settings: config,
    });
    this.removal = new JobRemoval({ queues, index, reads, accounting, store, redis, prefix, log, hooks });
  }

  /** Each model's job queue, on the submit connection. */
  get queues(): Map<string, Queue<JobData, JobResult>> {
    return this.all.byModel;
  }

  get webhooks(): Queue<WebhookJobData> {
    return this.all.webhooks;
  }

  /** Waits on jobs submitted elsewhere (GET with `Prefer: wait`): BullMQ's QueueEvents. */
  get finishes(): JobFinishEvents {
    return this.waiting.finishes;
  }

  /** Waits on jobs this instance submitted: notices sent to this instance alone. */
  get waits(): FinishWaits {
    return this.waiting.notices;
  }

  model(name: string): ModelEntry {
    return this.all.model(name);
  }

  /** The model's entry when it can run jobs (503 MODEL_UNAVAILABLE while its model file is missing). */
  runnableModel(name: string): ModelEntry {
    return this.all.runnable(name);
  }

  submit(model: string, input: Record<string, unknown>, options: SubmitOptions): Promise<SubmitResult> {
    return this.submitter.submit(model, input, options);
  }

  /** Refuses (429 QUEUE_FULL) when the model's queue holds QUEUE_MAX_WAITING jobs; `added` counts what this call adds. */
  checkWaiting(model: string, added = 0): Promise<void> {
    return this.quotas.checkWaiting(model, added);
  }

  /** Each model's queue on the read connection (queue gauges are refreshed through these). */
  readQueueEntries(): [string, Queue<JobData, JobResult>][] {
    return this.all.readQueueEntries();
  }

  get(id: string, tenant: string | null): Promise<JobView> {
    return this.reads.get(id, tenant);
  }

  /** Waits up to `seconds` for the job to finish (QueueEvents: no polling), then returns its view. */
  waitFor(id: string, tenant: string | null, seconds: number): Promise<JobView> {
    return this.waiting.waitFor(id, tenant, seconds);
  }

  cancel(id: string, tenant: string | null): Promise<JobView> {
    return this.removal.cancel(id, tenant);
  }

  remove(id: string, tenant: string | null): Promise<{ id: string; deleted: true }> {
    return this.removal.remove(id, tenant);
  }

  /** Set by close(): waits end at once and no new event streams are opened. */
  get closing(): boolean {
    return this.waiting.closing;
  }

  async close(): Promise<void> {
    await this.waiting.close();
    await this.all.close();
  }
}
