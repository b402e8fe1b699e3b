/**
 * Waiting for jobs this API instance submitted (predict, `Prefer: wait` on submit), through its
 * own finish-notice channel (shared/jobs/finish-notices.ts): one subscribed connection per
 * instance, which hears only the notices meant for it. A wait whose notice does not come (lost to
 * a Redis restart or while the subscription reconnects, or a worker of an earlier release) reads
 * the job back, at growing intervals, until it finished or its time is up. Every wait is bounded
 * by a timer and ended at once on close.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { channelReplyTo, type FinishNotice } from '../shared/jobs/finish-notices.js';
import { createRedis, type RedisClient } from '../shared/redis/connection.js';
import { finishNoticesChannel } from '../shared/redis/keys.js';
import type { Finish, FinishWatch } from './job-finish-events.js';
import { readBackUntilDone } from './read-back.js';

export interface FinishWaitsOptions {
  /** First read-back of a job whose notice has not come, ms; doubled each time up to `maxReadBackMs`. @defaultValue 1000 */
  readBackMs?: number;
  /** @defaultValue 5000 */
  maxReadBackMs?: number;
}

interface Waiter {
  finish: (outcome: Finish | null) => void;
}

export class FinishWaits {
  /** This instance's name. */
  readonly instance = randomUUID();
  /** What jobs carry as `reply_to`: this instance, told over its channel. */
  readonly replyTo = channelReplyTo(this.instance);
  /** Notices heard (every one is for a call of this instance): counted for tests and metrics. */
  received = 0;
  private readonly channel: string;
  private readonly waiters = new Map<string, Waiter>();
  private connection: RedisClient | null = null;
  private closed = false;

  constructor(
    private readonly config: Pick<Config, 'MODELHUB_PREFIX' | 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>,
    private readonly log: Logger,
    private readonly options: FinishWaitsOptions = {},
  ) {
    this.channel = finishNoticesChannel(config.MODELHUB_PREFIX, this.instance);
  }

  /**
   * Arms a wait for `id` (before its job is added, so its notice cannot slip past). `isDone`
   * reads the job back when no notice came: true once it finished or is gone, and the wait then
   * ends with `{ event: 'removed' }` (the caller reads the job). `done` never rejects.
   */
  watch(id: string, ttlMs: number, isDone: () => Promise<boolean>): FinishWatch {
    this.listen();
    let finish!: (outcome: Finish | null) => void;
    const done = new Promise<Finish | null>((resolve) => {
      const timer = setTimeout(() => finish(null), ttlMs);
      finish = (outcome) => {
        if (this.waiters.get(id)?.finish !== finish) return;
        clearTimeout(timer);
        stopReadBack();
        this.waiters.delete(id);
        resolve(outcome);
      };
      this.waiters.set(id, { finish });
      const stopReadBack = readBackUntilDone(isDone, () => finish({ event: 'removed' }), {
        firstMs: this.options.readBackMs,
        maxMs: this.options.maxReadBackMs,
      });
    });
    if (this.closed) finish(null);
    return { done, cancel: () => finish(null) };
  }

  /**
   * Subscribes to this instance's channel now (the API does at start-up), so its first call's
   * notice does not race the subscription; the first watch() does it otherwise.
   */
  listen(): void {
    if (this.connection || this.closed) return;
    // A subscriber connection: ioredis subscribes again after every reconnect (Redis restarted).
    const connection = createRedis(this.config, { blocking: true });
    connection.on('error', (err) => this.log.debug({ err: err.message }, 'finish notices connection error'));
    connection.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.deliver(message);
    });
    this.connection = connection;
    connection.subscribe(this.channel).catch((err: Error) => {
      // Only while Redis cannot be reached; the subscription is made again once it can.
      this.log.debug({ err: err.message }, 'could not subscribe to finish notices yet');
    });
  }

  private deliver(json: string | undefined): void {
    if (!json) return;
    this.received += 1;
    let notice: FinishNotice;
    try {
      notice = JSON.parse(json) as FinishNotice;
    } catch {
      return;
    }
    const waiter = this.waiters.get(notice.id);
    if (!waiter) return;
    waiter.finish(
      notice.event === 'completed'
        ? { event: 'completed', returnvalue: notice.returnvalue as never }
        : { event: 'failed', failedReason: notice.failedReason },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.waiters.values()]) w.finish(null);
    this.connection?.disconnect();
  }
}
