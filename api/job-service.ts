/**
 * The API's side of the queues: enqueue validated jobs, find them again by id, wait for them.
 * One BullMQ Queue per model (created at start-up); QueueEvents per model, created on first wait.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ModelEntry } from '../shared/manifest.js';
import { createRedis, defaultJobOptions, jobIndexKey, modelQueueName, type JobData, type JobResult } from '../shared/queue.js';
import { jobView, type JobView } from './job-view.js';

export interface SubmitOptions {
  tenant: string | null;
  priority?: number;
  timeoutS?: number;
}

interface JobIndexEntry {
  model: string;
  tenant: string | null;
}

export class JobService {
  readonly queues = new Map<string, Queue<JobData, JobResult>>();
  private readonly events = new Map<string, QueueEvents>();

  constructor(
    private readonly models: Map<string, ModelEntry>,
    private readonly redis: Redis,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    for (const name of models.keys()) {
      const queue = new Queue<JobData, JobResult>(modelQueueName(name), {
        connection: redis,
        prefix: config.MODELHUB_PREFIX,
        defaultJobOptions: defaultJobOptions(config),
      });
      queue.on('error', (err) => log.warn({ err: err.message, model: name }, 'queue error'));
      this.queues.set(name, queue);
    }
  }

  model(name: string): ModelEntry {
    const entry = this.models.get(name);
    if (!entry) throw new SpecError('MODEL_NOT_FOUND', `unknown model "${name}"`);
    return entry;
  }

  async submit(model: string, input: Record<string, unknown>, options: SubmitOptions): Promise<JobView> {
    const entry = this.model(model);
    if (!entry.modelPath) throw new SpecError('MODEL_UNAVAILABLE', `model "${model}" is unavailable: its model file is not installed`);
    const queue = this.queues.get(model)!;
    const id = randomUUID();
    const data: JobData = {
      model,
      input,
      tenant: options.tenant,
      ...(options.timeoutS ? { deadline_at: Date.now() + options.timeoutS * 1000 } : {}),
    };
    return backend(async () => {
      const waiting = await queue.getJobCountByTypes('waiting', 'prioritized', 'delayed');
      if (waiting >= this.config.QUEUE_MAX_WAITING) {
        throw new SpecError('QUEUE_FULL', `model "${model}" has ${waiting} jobs waiting; try again later`, { 'Retry-After': '5' });
      }
      const index: JobIndexEntry = { model, tenant: options.tenant };
      await this.redis.set(jobIndexKey(this.config.MODELHUB_PREFIX, id), JSON.stringify(index), 'EX', this.config.JOB_RETENTION_S + 3600);
      const job = await queue.add('infer', data, {
        jobId: id,
        // BullMQ: 0 = no priority, 1 = highest; the API's 1..10 maps onto it directly.
        ...(options.priority ? { priority: options.priority } : {}),
      });
      return jobView(job, 'waiting');
    });
  }

  /** The job, if it exists and belongs to the tenant; 404 otherwise (no hint that another tenant has it). */
  async find(id: string, tenant: string | null): Promise<{ job: Job<JobData, JobResult>; queue: Queue<JobData, JobResult> }> {
    return backend(async () => {
      const raw = await this.redis.get(jobIndexKey(this.config.MODELHUB_PREFIX, id));
      const index = raw ? (JSON.parse(raw) as JobIndexEntry) : null;
      const queue = index ? this.queues.get(index.model) : undefined;
      const job = queue ? await queue.getJob(id) : undefined;
      if (!index || !queue || !job || index.tenant !== tenant) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      return { job, queue };
    });
  }

  async get(id: string, tenant: string | null): Promise<JobView> {
    const { queue } = await this.find(id, tenant);
    return backend(async () => {
      // State first, then the job: a job read before its state could say "completed" without
      // the return value that completion wrote in the meantime.
      const state = await queue.getJobState(id);
      const job = await queue.getJob(id);
      if (!job) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      return jobView(job, state);
    });
  }

  /**
   * Waits up to `seconds` for the job to finish (through QueueEvents: no polling), then
   * returns its view, finished or not.
   */
  async waitFor(id: string, tenant: string | null, seconds: number): Promise<JobView> {
    const { job } = await this.find(id, tenant);
    if (seconds > 0) {
      const events = await this.queueEvents(job.data.model);
      try {
        await job.waitUntilFinished(events, seconds * 1000);
      } catch {
        // Failed or timed out: either way the view below says which.
      }
    }
    return this.get(id, tenant);
  }

  private async queueEvents(model: string): Promise<QueueEvents> {
    let events = this.events.get(model);
    if (!events) {
      events = new QueueEvents(modelQueueName(model), {
        connection: createRedis(this.config, { blocking: true }),
        prefix: this.config.MODELHUB_PREFIX,
      });
      events.on('error', (err) => this.log.warn({ err: err.message, model }, 'queue events error'));
      this.events.set(model, events);
      await events.waitUntilReady();
    }
    return events;
  }

  async close(): Promise<void> {
    await Promise.all([...this.events.values()].map((e) => e.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/** Runs a Redis-backed step; a Redis failure becomes a 503 spec error rather than a hang or a 500. */
async function backend<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw new SpecError('BACKEND_UNAVAILABLE', `the job store is unavailable: ${(err as Error).message}`);
  }
}
