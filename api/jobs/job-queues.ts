/**
 * The models and their queues on the API's side: each model's job queue (adds, on the submit
 * connection), the same queues and the predict lanes on the read connection, and the webhook
 * events' queue. Every request starts with the model lookup here.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { SpecError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelEntry } from '../../shared/manifest.js';
import type { JobData, JobResult } from '../../shared/jobs/payload.js';
import { PREDICT_LANE_EVENTS_MAX_LEN } from '../../shared/jobs/retention.js';
import type { EntryData, EntryResult } from '../../shared/predict/entry.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { WEBHOOK_QUEUE, modelQueueName, predictQueueName } from '../../shared/redis/keys.js';
import type { WebhookJobData } from '../../shared/webhooks/events.js';
import { bullTelemetry } from '../../shared/tracing.js';
import { ImageJobQueue } from '../image-job-queue.js';

export interface JobQueuesOptions {
  /** Key prefix of the hub's queues and keys (MODELHUB_PREFIX). */
  prefix: string;
  /** What every job gets: attempts, backoff, retention (shared/jobs/retention.ts defaultJobOptions). */
  jobOptions: JobsOptions;
  /** What every webhook event gets (shared/webhooks/events.ts webhookJobOptions). */
  webhookJobOptions: JobsOptions;
}

export class JobQueues {
  /** Each model's job queue, on the submit connection. */
  readonly byModel = new Map<string, Queue<JobData, JobResult>>();
  readonly webhooks: Queue<WebhookJobData>;
  /**
   * Reads (GET, polls, waits) go through their own connection and queue objects: a large job
   * being read must not hold up the connection that submits (Redis answers one connection's
   * commands in order).
   */
  private readonly reads = new Map<string, Queue<JobData, JobResult>>();
  /** Each model's predict lane (coalesced predict entries), on the read connection. */
  private readonly predictReads = new Map<string, Queue<EntryData, EntryResult>>();

  constructor(
    private readonly models: Map<string, ModelEntry>,
    redis: RedisClient,
    reader: RedisClient,
    options: JobQueuesOptions,
    log: Logger,
  ) {
    const { prefix } = options;
    for (const name of models.keys()) {
      if (reader !== redis) {
        const readQueue = new Queue<JobData, JobResult>(modelQueueName(name), { connection: reader, prefix });
        readQueue.on('error', (err) => log.warn({ err: err.message, model: name }, 'queue error (reads)'));
        this.reads.set(name, readQueue);
      }
      // Its options as PredictEntries' queue has them: each Queue writes the lane's meta.
      const predictRead = new Queue<EntryData, EntryResult>(predictQueueName(name), {
        connection: reader,
        prefix,
        streams: { events: { maxLen: PREDICT_LANE_EVENTS_MAX_LEN } },
      });
      predictRead.on('error', (err) => log.warn({ err: err.message, model: name }, 'predict lane error (reads)'));
      this.predictReads.set(name, predictRead);
      // Adds store a large image without re-encoding it on the event loop (image-job-queue.ts).
      const queue = new ImageJobQueue<JobData, JobResult>(modelQueueName(name), {
        connection: redis,
        prefix,
        defaultJobOptions: options.jobOptions,
        // Tracing on: each job carries its trace context (bullmq-otel) to the worker.
        telemetry: bullTelemetry(),
      });
      queue.on('error', (err) => log.warn({ err: err.message, model: name }, 'queue error'));
      this.byModel.set(name, queue);
    }
    this.webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
      connection: redis,
      prefix,
      defaultJobOptions: options.webhookJobOptions,
      telemetry: bullTelemetry(),
    });
    this.webhooks.on('error', (err) => log.warn({ err: err.message }, 'webhook queue error'));
  }

  /** The model's entry (404 MODEL_NOT_FOUND for a name the catalog does not list). */
  model(name: string): ModelEntry {
    const entry = this.models.get(name);
    if (!entry) throw new SpecError('MODEL_NOT_FOUND', `unknown model "${name}"`);
    return entry;
  }

  /** The model's entry when it can run jobs (503 MODEL_UNAVAILABLE while its model file is missing). */
  runnable(name: string): ModelEntry {
    const entry = this.model(name);
    if (!entry.modelPath)
      throw new SpecError('MODEL_UNAVAILABLE', `model "${name}" is unavailable: its model file is not installed`);
    return entry;
  }

  /** The model's job queue on the submit connection (the model is known: looked up first). */
  queue(model: string): Queue<JobData, JobResult> {
    return this.byModel.get(model)!;
  }

  readQueue(model: string): Queue<JobData, JobResult> {
    return this.reads.get(model) ?? this.queue(model);
  }

  /** The model's predict lane on the read connection, read as jobs are (its entries' hashes). */
  predictReadQueue(model: string): Queue<JobData, JobResult> {
    return this.predictReads.get(model)! as unknown as Queue<JobData, JobResult>;
  }

  /** Each model's queue on the read connection (queue gauges are refreshed through these). */
  readQueueEntries(): [string, Queue<JobData, JobResult>][] {
    return [...this.byModel.keys()].map((name) => [name, this.readQueue(name)]);
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.byModel.values(), ...this.reads.values(), ...this.predictReads.values(), this.webhooks].map((q) =>
        q.close(),
      ),
    );
  }
}
