/**
 * Binds a model's BullMQ queue to its ModelRunner. BullMQ hands out up to `concurrency` jobs at
 * once; each waits in the runner's batcher, so concurrency (2 × max_batch_size) is what lets a
 * full inference batch form while the previous one runs.
 *
 * Only the run whose completion BullMQ recorded speaks for a job: its outcome metrics, its
 * `completed` webhook event and its accounting are emitted from the worker's `completed` and
 * `failed` events, which fire only after `moveToFinished` succeeded (it checks this run's lock
 * token). A run that lost its lock (a worker stopped past MODELHUB_LOCK_MS, its job recovered by
 * another) is told through its abort signal and ends without a word; one that finishes anyway is
 * refused by BullMQ. A worker that dies after the completion but before those events leaves a
 * record the reconciler settles (api/reconciler.ts), the webhook event included.
 */
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { RetentionSettings } from '../shared/jobs/accounting.js';
import { SpecError, deadlinePassedError, isRetriable } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { jobView, type JobView } from '../shared/job-view.js';
import { JobAccounting } from '../shared/jobs/accounting.js';
import { sendFinishNotice } from '../shared/jobs/finish-notices.js';
import { readJobData, type JobData, type JobResult, type WebhookEvent } from '../shared/jobs/payload.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { modelQueueName } from '../shared/redis/keys.js';
import { finishedJobData } from '../shared/redis/bullmq-internals.js';
import { enqueueWebhookEvent, type WebhookJobData } from '../shared/webhooks/events.js';
import { deviceName } from './backend/device.js';
import { abandonOnLockLoss, laneWorkerOptions } from './lane-worker.js';
import { ProbingWorker } from './probing-worker.js';
import type { WorkerMetrics } from './metrics.js';
import type { ItemIntake } from './item-intake.js';
import type { ModelRunner, RunResult } from './model-runner.js';
import { ATTR, annotateActiveSpan, inSpan } from '../shared/tracing.js';

export interface ConsumerOptions {
  prefix: string;
  connection: RedisClient;
  workerId: string;
  /** How long a job's run/cancel claim is kept, seconds (at least the job's retention). */
  claimTtlS: number;
  /** Where webhook events are enqueued (delivered elsewhere, never on this event loop). */
  webhooks: Queue<WebhookJobData>;
  /** Lock held on a running job, ms (MODELHUB_LOCK_MS); renewed at half this. A worker silent past it loses its jobs to others. */
  lockDurationMs: number;
  /** How often stalled jobs (a dead worker's) are looked for, ms (MODELHUB_STALLED_INTERVAL_MS). */
  stalledIntervalMs: number;
  /** Recoveries from dead workers before a job fails instead (a job that kills its worker; MODELHUB_MAX_STALLED). */
  maxStalledCount: number;
  /** How long, how many and how many bytes of finished jobs' results a model keeps. */
  retention: RetentionSettings;
}

export class QueueConsumer {
  readonly worker: Worker<JobData, JobResult>;
  private readonly runner: ModelRunner;
  private readonly model: string;
  private readonly accounting: JobAccounting;

  constructor(
    /** An interactive job is an entry of one item: it goes through the intake like a batch chunk's. */
    private readonly intake: ItemIntake,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly options: ConsumerOptions,
  ) {
    const runner = (this.runner = intake.runner);
    const model = (this.model = runner.entry.manifest.name);
    this.accounting = new JobAccounting(options.connection, options.prefix, {
      ttlS: options.claimTtlS,
      retention: options.retention,
    });
    // Three parameters: BullMQ hands the processor an abort signal only when it takes one.
    this.worker = new ProbingWorker<JobData, JobResult>(
      modelQueueName(model),
      (job, _token, signal) => this.process(job, signal),
      laneWorkerOptions(options, runner.entry.manifest.batching.max_batch_size * 2),
    );
    this.worker.on('error', (err) => this.log.error({ err, model }, 'queue consumer error'));
    abandonOnLockLoss(this.worker, model, 'jobs', log, metrics);
    this.worker.on('completed', (job) => {
      // BullMQ recorded the finish: the waiting API instance hears of it first.
      if (job.data.reply_to)
        void sendFinishNotice(options.connection, options.prefix, job.data.reply_to, {
          id: job.id!,
          event: 'completed',
          returnvalue: job.returnvalue,
        });
      this.metrics.jobs.inc({ model, outcome: 'succeeded' });
      this.metrics.jobDurationSeconds.observe({ model }, (Date.now() - job.timestamp) / 1000);
      void this.finished(job);
    });
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      const canceled = SpecError.fromReason(err.message).kind === 'CANCELED';
      this.metrics.jobs.inc({ model, outcome: canceled ? 'canceled' : final ? 'failed' : 'retried' });
      // Also covers failures decided outside the processor (a job stalled too often).
      if (final && job.data.reply_to)
        void sendFinishNotice(options.connection, options.prefix, job.data.reply_to, {
          id: job.id!,
          event: 'failed',
          failedReason: job.failedReason || err.message,
        });
      if (final) void this.finished(job);
    });
  }

  start(): void {
    void this.worker.run();
  }

  async close(): Promise<void> {
    await this.worker.close();
  }

  private async process(job: Job<JobData, JobResult>, signal?: AbortSignal): Promise<JobResult> {
    const model = this.model;
    const startedAt = Date.now();
    const waitedMs = Math.max(0, startedAt - job.timestamp);
    this.metrics.queueWaitSeconds.observe({ model }, waitedMs / 1000);
    this.traceStart(job);
    try {
      const data = readJobData(job.data);
      const deadline = data.deadline_at;
      // Claimed (which also ends the job's place in its tenant's waiting count) while its input
      // decodes: the item enters an inference batch only once the claim is 'running', and a
      // failure is reported only after the claim is known, so a cancel that won is what the job
      // ends with, as when the claim came first.
      const claimed = this.accounting.claimForRun(model, job.id!).then((claim) => {
        if (claim === 'canceled') throw new SpecError('CANCELED', 'the job was canceled before it ran');
        // A cancel found it queued past its deadline: it had failed, and its readers were told so.
        if (claim === 'expired') throw deadlinePassedError();
      });
      claimed.catch(() => undefined); // awaited on every path below
      if (deadline && startedAt > deadline) {
        await claimed;
        throw deadlinePassedError();
      }
      // Fire and forget, once claimed: the start event must not slow the job.
      void claimed.then(
        () => this.emit(job, 'start', () => jobView(job, 'active')),
        () => undefined,
      );
      let r: RunResult;
      try {
        r = await this.intake.runOne(data.input, deadline, signal, claimed);
      } catch (err) {
        await claimed;
        throw err;
      }
      return {
        output: r.output,
        metrics: {
          inference_ms: round(r.inferenceMs),
          preprocess_ms: round(r.preprocessMs),
          batch_size: r.batchSize,
          device: deviceName(this.runner.device),
          // The worker (its registry id), not BullMQ's Worker.name (the queue's name).
          worker: this.options.workerId,
          weights_sha256: this.runner.weights.sha256,
          weights: this.runner.weights.verification,
        },
      };
    } catch (err) {
      // Input errors are final: retrying the same bad image gives the same answer.
      if (err instanceof SpecError && !isRetriable(err)) {
        throw new UnrecoverableError(err.toReason());
      }
      const spec = err instanceof SpecError ? err : new SpecError('INFERENCE_FAILED', (err as Error).message);
      if (!signal?.aborted) this.log.warn({ err, jobId: job.id, model }, 'job failed');
      throw new Error(spec.toReason(), { cause: err });
    }
  }

  /**
   * A finished job (BullMQ recorded it): its `completed` webhook event, then its accounting (its
   * input dropped, its result counted and bounded by the retention). The event goes first: it is
   * enqueued once whoever enqueues it, so a crash in between leaves a record the reconciler
   * finishes, event included, and never a finished record whose event was lost.
   */
  private finished(job: Job<JobData, JobResult>): Promise<void> {
    // Called from BullMQ's completed/failed event, inside the job's `process` span.
    return inSpan('finish', { attributes: { [ATTR.model]: this.model, [ATTR.jobId]: job.id! } }, () =>
      this.recordFinished(job),
    );
  }

  private async recordFinished(job: Job<JobData, JobResult>): Promise<void> {
    try {
      await this.enqueueEvent(job, 'completed');
      const dataWithoutInput = finishedJobData(job.data);
      const pushedOut = await this.accounting.finish(this.model, {
        id: job.id!,
        tenant: job.data.tenant,
        dataWithoutInput,
      });
      if (pushedOut.length > 0)
        this.log.info({ model: this.model, removed: pushedOut.length }, 'results past JOB_RETENTION_BYTES removed');
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message, jobId: job.id },
        'could not record a finished job; the reconciler will',
      );
    }
  }

  /**
   * Tracing on: the `process` span's messaging attributes, and the job's time in the queue as its
   * start and end attributes (epoch ms; a span of its own would cost a span per job for a number).
   */
  private traceStart(job: Job<JobData, JobResult>): void {
    // As the job view counts it (metrics.queue_ms): creation to BullMQ's start of this attempt.
    const startedAt = job.processedOn ?? Date.now();
    annotateActiveSpan({
      [ATTR.messagingSystem]: 'bullmq',
      [ATTR.messagingDestination]: modelQueueName(this.model),
      [ATTR.messagingOperationType]: 'process',
      [ATTR.messagingMessageId]: job.id!,
      [ATTR.model]: this.model,
      [ATTR.device]: deviceName(this.runner.device),
      [ATTR.queueEnqueuedAt]: job.timestamp,
      [ATTR.queueStartedAt]: startedAt,
      [ATTR.queueWaitMs]: Math.max(0, startedAt - job.timestamp),
      'modelhub.attempt': job.attemptsMade + 1,
    });
  }

  /** Enqueues a webhook event, when the job has a webhook that wants it (once: a repeat is a no-op). */
  private async enqueueEvent(job: Job<JobData, JobResult>, event: WebhookEvent, body?: () => JobView): Promise<void> {
    if (!job.data.webhook) return;
    await enqueueWebhookEvent(
      this.options.webhooks,
      { id: job.id!, model: job.data.model, webhook: job.data.webhook },
      event,
      body?.(),
    );
  }

  /** The `start` event: never rejects (a webhook queue hiccup must not fail the job). */
  private async emit(job: Job<JobData, JobResult>, event: WebhookEvent, body?: () => JobView): Promise<void> {
    try {
      await this.enqueueEvent(job, event, body);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, jobId: job.id, event }, 'could not enqueue webhook event');
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
