/**
 * Waiting for jobs to finish, without polling: one BullMQ QueueEvents stream per model (opened on
 * first use, on a blocking connection of its own), listeners per job id, every wait bounded by a
 * timer and ended at once on close, so held requests answer instead of holding a shutdown.
 */
import type { EventEmitter } from 'node:events';
import { QueueEvents } from 'bullmq';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { JobResult } from '../shared/jobs/payload.js';
import { createRedis, type RedisClient } from '../shared/redis/connection.js';
import { modelQueueName } from '../shared/redis/keys.js';
import { readBackUntilDone } from './read-back.js';

/** What a job's finishing event says (completed with its result, failed with its reason, or removed). */
export type Finish =
  { event: 'completed'; returnvalue: JobResult } | { event: 'failed'; failedReason: string } | { event: 'removed' };

/** A wait armed for one job: `done` resolves with its event, or null after the timeout or on close; it never rejects. */
export interface FinishWatch {
  done: Promise<Finish | null>;
  cancel(): void;
}

/** How long an event stream may take to become ready before a wait falls back (Redis away). */
const READY_TIMEOUT_MS = 2000;

/** While no event stream can be had, a wait checks the job this often. */
const DEGRADED_POLL_MS = 250;

export interface JobFinishEventsOptions {
  /**
   * First read-back of a job whose event has not come, ms; doubled each time up to
   * `maxReadBackMs`. An event can be missed: a stream just opened reads only events after its
   * first read, and a job that finished between the wait's first check and that read would
   * otherwise hold its wait to the end. @defaultValue 1000
   */
  readBackMs?: number;
  /** @defaultValue 5000 */
  maxReadBackMs?: number;
}

export class JobFinishEvents {
  private readonly streams = new Map<string, QueueEvents>();
  /** BullMQ leaves connections it was given open: these are closed here. */
  private readonly connections: RedisClient[] = [];
  /** Ends every wait in progress. */
  private readonly waiters = new Set<() => void>();
  /** Set by close(): waits end at once and no new event streams are opened. */
  closing = false;

  constructor(
    private readonly config: Pick<Config, 'MODELHUB_PREFIX' | 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>,
    private readonly log: Logger,
    private readonly options: JobFinishEventsOptions = {},
  ) {}

  /** Event streams opened so far (each one reads every finish of its queue). */
  get streamsOpen(): number {
    return this.streams.size;
  }

  /**
   * Listens for the job's finishing event (null: no event stream now; wait the slow way). Armed
   * before the job is added, its completion cannot slip past between the add and the listen.
   */
  async watch(
    model: string,
    id: string,
    ttlMs: number,
    queueName = modelQueueName(model),
  ): Promise<FinishWatch | null> {
    const emitter = await this.stream(queueName);
    if (!emitter) return null;
    let finish!: (outcome: Finish | null) => void;
    const done = new Promise<Finish | null>((resolve) => {
      const handlers = {
        [`completed:${id}`]: (args: { returnvalue: JobResult }) =>
          finish({ event: 'completed', returnvalue: args.returnvalue }),
        [`failed:${id}`]: (args: { failedReason: string }) =>
          finish({ event: 'failed', failedReason: args.failedReason }),
        [`removed:${id}`]: () => finish({ event: 'removed' }),
      };
      const end = () => finish(null);
      const timer = setTimeout(end, ttlMs);
      finish = (outcome) => {
        clearTimeout(timer);
        for (const [name, handler] of Object.entries(handlers)) emitter.off(name, handler);
        this.waiters.delete(end);
        resolve(outcome);
      };
      this.waiters.add(end);
      for (const [name, handler] of Object.entries(handlers)) emitter.on(name, handler);
    });
    return { done, cancel: () => finish(null) };
  }

  /**
   * Resolves when the job finishes, is removed, or `ttlMs` passes; never rejects. `isDone` reads
   * the job (it may have finished before the listeners were attached; without an event stream it
   * is polled). Not BullMQ's waitUntilFinished: its internal check can reject unhandled when
   * Redis hiccups, which would end the process.
   */
  async until(
    model: string,
    id: string,
    ttlMs: number,
    isDone: () => Promise<boolean>,
    queueName = modelQueueName(model),
  ): Promise<void> {
    if (this.closing) return;
    const deadline = Date.now() + ttlMs;
    const emitter = await this.stream(queueName);
    if (!emitter) {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may set it during the awaits; TypeScript keeps the narrowing from above
      while (!this.closing && Date.now() < deadline && !(await isDone()))
        await new Promise((r) => setTimeout(r, DEGRADED_POLL_MS));
      return;
    }
    await new Promise<void>((resolve) => {
      const names = ['completed', 'failed', 'removed'].map((e) => `${e}:${id}`);
      const done = () => {
        clearTimeout(timer);
        stopReadBack();
        for (const n of names) emitter.off(n, done);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      for (const n of names) emitter.on(n, done);
      // Read now (it may have finished before the listeners were attached), then again at
      // growing intervals, in case its event was missed.
      const stopReadBack = readBackUntilDone(isDone, done, {
        firstMs: this.options.readBackMs,
        maxMs: this.options.maxReadBackMs,
        now: true,
      });
    });
  }

  /**
   * A queue's event stream (a model's queue, or its predict lane), or null when it cannot be made ready in time. BullMQ emits
   * "<event>:<job id>" besides "<event>"; its listener types know only the latter, hence the
   * plain EventEmitter.
   */
  private async stream(queue: string): Promise<EventEmitter | null> {
    if (this.closing) return null;
    let events = this.streams.get(queue);
    if (!events) {
      const connection = createRedis(this.config, { blocking: true });
      connection.on('error', (err) => this.log.debug({ err: err.message, queue }, 'queue events connection error'));
      this.connections.push(connection);
      events = new QueueEvents(queue, { connection, prefix: this.config.MODELHUB_PREFIX });
      events.on('error', (err) => this.log.warn({ err: err.message, queue }, 'queue events error'));
      this.streams.set(queue, events);
    }
    const ready = events.waitUntilReady().then(
      () => true,
      () => false,
    );
    const timeout = new Promise<false>((r) => setTimeout(() => r(false), READY_TIMEOUT_MS).unref());
    return (await Promise.race([ready, timeout])) ? (events as unknown as EventEmitter) : null;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const done of [...this.waiters]) done();
    await Promise.all([...this.streams.values()].map((e) => e.close()));
    for (const c of this.connections) c.disconnect();
  }
}
