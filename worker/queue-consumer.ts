/**
 * Binds a model's BullMQ queue to its ModelRunner. BullMQ hands out up to `concurrency` jobs at
 * once; each waits in the runner's batcher, so concurrency (2 × max_batch_size) is what lets a
 * full batch form while the previous one runs.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { jobView, type JobView } from '../shared/job-view.js';
import { readJobData, type JobData, type JobResult, type WebhookEvent } from '../shared/jobs/payload.js';
import { claimForRun } from '../shared/redis/claims.js';
import { finishJob } from '../shared/jobs/retained-results.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { modelQueueName } from '../shared/redis/keys.js';
import { enqueueWebhookEvent, type WebhookJobData } from '../shared/webhooks/events.js';
import { deviceName } from './backend/device.js';
import type { WorkerMetrics } from './metrics.js';
import type { ItemIntake } from './item-intake.js';
import type { ModelRunner } from './model-runner.js';

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
  retention: Pick<Config, 'JOB_RETENTION_S' | 'JOB_RETENTION_COUNT' | 'JOB_RETENTION_BYTES'>;
}

export class QueueConsumer {
  readonly worker: Worker<JobData, JobResult>;
  private readonly runner: ModelRunner;
  /** Removes jobs the retention's byte bound pushed out (made when first needed). */
  private queue: Queue | null = null;

  constructor(
    /** An interactive job is an entry of one item: it goes through the intake like a batch chunk's. */
    private readonly intake: ItemIntake,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly options: ConsumerOptions,
  ) {
    const runner = (this.runner = intake.runner);
    const model = runner.entry.manifest.name;
    this.worker = new Worker<JobData, JobResult>(modelQueueName(model), (job) => this.process(job), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: runner.entry.manifest.batching.max_batch_size * 2,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      autorun: false,
      name: options.workerId,
    });
    this.worker.on('error', (err) => this.log.error({ err, model }, 'queue consumer error'));
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      const canceled = SpecError.fromReason(err.message).kind === 'CANCELED';
      this.metrics.jobs.inc({ model, outcome: canceled ? 'canceled' : final ? 'failed' : 'retried' });
      // Also covers failures decided outside the processor (a job stalled too often).
      if (final) {
        void this.emit(job, 'completed');
        this.dropInput(job);
      }
    });
    this.worker.on('completed', (job) => this.dropInput(job));
  }

  start(): void {
    void this.worker.run();
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.queue?.close();
  }

  private async process(job: Job<JobData, JobResult>): Promise<JobResult> {
    const model = this.runner.entry.manifest.name;
    const startedAt = Date.now();
    this.metrics.queueWaitSeconds.observe({ model }, Math.max(0, startedAt - job.timestamp) / 1000);
    try {
      const data = readJobData(job.data);
      const deadline = data.deadline_at;
      // Claimed first (it also ends the job's place in its tenant's waiting count), then judged.
      const claim = await claimForRun(
        this.options.connection,
        this.options.prefix,
        model,
        job.id!,
        this.options.claimTtlS,
        data.tenant,
      );
      if (claim === 'canceled') throw new SpecError('CANCELED', 'the job was canceled before it ran');
      if (deadline && startedAt > deadline) {
        throw new SpecError('DEADLINE_EXCEEDED', "the job's deadline (timeout_s) passed before it could run");
      }
      // Fire and forget: the start event must not slow the job.
      void this.emit(job, 'start', () => jobView(job, 'active'));
      const r = await this.intake.runOne(data.input, deadline);
      this.metrics.jobs.inc({ model, outcome: 'succeeded' });
      this.metrics.jobDurationSeconds.observe({ model }, (Date.now() - job.timestamp) / 1000);
      // Before the job is marked finished: a worker dying in between must not lose the event.
      await this.emit(job, 'completed');
      return {
        output: r.output,
        metrics: {
          inference_ms: round(r.inferenceMs),
          preprocess_ms: round(r.preprocessMs),
          batch_size: r.batchSize,
          device: deviceName(this.runner.device),
          worker: this.worker.name,
        },
      };
    } catch (err) {
      // Input errors are final: retrying the same bad image gives the same answer.
      if (err instanceof SpecError && err.kind !== 'INFERENCE_FAILED' && err.kind !== 'INTERNAL') {
        await this.emit(job, 'completed');
        throw new UnrecoverableError(err.toReason());
      }
      const spec = err instanceof SpecError ? err : new SpecError('INFERENCE_FAILED', (err as Error).message);
      this.log.warn({ err, jobId: job.id, model }, 'job failed');
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await this.emit(job, 'completed');
      throw new Error(spec.toReason(), { cause: err });
    }
  }

  /**
   * A finished job keeps its result for the retention period but not its input (an image can be
   * megabytes); its result joins the model's retained results, bounded by bytes too. One script
   * call, not awaited: the job is already finished for its client.
   */
  private dropInput(job: Job<JobData, JobResult>): void {
    if (job.data.input_dropped) return;
    const { prefix, connection, retention } = this.options;
    const model = this.runner.entry.manifest.name;
    const finished = {
      id: job.id!,
      key: this.worker.toKey(job.id!),
      tenant: job.data.tenant,
      dataWithoutInput: JSON.stringify({ ...job.data, input: {}, input_dropped: true }),
      inputBytes: job.data.input_bytes ?? 0,
    };
    finishJob(connection, prefix, model, finished, retention)
      .then((pushedOut) => (pushedOut.length > 0 ? this.removePushedOut(pushedOut) : undefined))
      .catch((err: Error) =>
        this.log.debug({ err: err.message, jobId: job.id }, "could not drop a finished job's input"),
      );
  }

  /** Jobs whose results the byte bound pushed out: removed through BullMQ (it knows all their keys). */
  private async removePushedOut(ids: string[]): Promise<void> {
    this.queue ??= new Queue(modelQueueName(this.runner.entry.manifest.name), {
      connection: this.options.connection,
      prefix: this.options.prefix,
    });
    for (const id of ids) await this.queue.remove(id).catch(() => undefined);
    this.log.info(
      { model: this.runner.entry.manifest.name, removed: ids.length },
      'results past JOB_RETENTION_BYTES removed',
    );
  }

  /**
   * Enqueues a webhook event; never rejects (a webhook queue hiccup must not fail the job). The
   * completed event is awaited before the job is marked finished, without a body: delivery
   * reads the finished job. `body` is only built when the job has a webhook.
   */
  private async emit(job: Job<JobData, JobResult>, event: WebhookEvent, body?: () => JobView): Promise<void> {
    if (!job.data.webhook) return;
    try {
      await enqueueWebhookEvent(
        this.options.webhooks,
        { id: job.id!, model: job.data.model, webhook: job.data.webhook },
        event,
        body?.(),
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message, jobId: job.id, event }, 'could not enqueue webhook event');
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
