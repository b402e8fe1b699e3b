/**
 * Waiting for jobs this API instance submitted (predict, `Prefer: wait` on submit), through its
 * own finish-notice stream (shared/jobs/finish-notices.ts): one blocking XREAD per instance, which
 * reads only the notices meant for it. A wait whose notice does not come (lost to a Redis restart,
 * a worker of an earlier release) reads the job back, at growing intervals, until it finished or
 * its time is up. Every wait is bounded by a timer and ended at once on close.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { FinishNotice } from '../shared/jobs/finish-notices.js';
import { createRedis, type RedisClient } from '../shared/redis/connection.js';
import { finishNoticesKey } from '../shared/redis/keys.js';
import type { Finish, FinishWatch } from './job-finish-events.js';

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
  /** This instance's name in jobs' `reply_to`. */
  readonly instance = randomUUID();
  /** Notices read (every one is for a call of this instance): counted for tests and metrics. */
  received = 0;
  private readonly key: string;
  private readonly waiters = new Map<string, Waiter>();
  private connection: RedisClient | null = null;
  private reading: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly config: Pick<Config, 'MODELHUB_PREFIX' | 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>,
    private readonly log: Logger,
    private readonly options: FinishWaitsOptions = {},
  ) {
    this.key = finishNoticesKey(config.MODELHUB_PREFIX, this.instance);
  }

  /**
   * Arms a wait for `id` (before its job is added, so its notice cannot slip past). `isDone`
   * reads the job back when no notice came: true once it finished or is gone, and the wait then
   * ends with `{ event: 'removed' }` (the caller reads the job). `done` never rejects.
   */
  watch(id: string, ttlMs: number, isDone: () => Promise<boolean>): FinishWatch {
    this.start();
    let finish!: (outcome: Finish | null) => void;
    const done = new Promise<Finish | null>((resolve) => {
      let readBack = this.options.readBackMs ?? 1000;
      let poll: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => finish(null), ttlMs);
      finish = (outcome) => {
        if (this.waiters.get(id)?.finish !== finish) return;
        clearTimeout(timer);
        clearTimeout(poll);
        this.waiters.delete(id);
        resolve(outcome);
      };
      const check = () => {
        poll = setTimeout(() => {
          void isDone().then(
            (finished) => (finished ? finish({ event: 'removed' }) : check()),
            () => check(),
          );
        }, readBack);
        readBack = Math.min(readBack * 2, this.options.maxReadBackMs ?? 5000);
      };
      this.waiters.set(id, { finish });
      check();
    });
    if (this.closed) finish(null);
    return { done, cancel: () => finish(null) };
  }

  private start(): void {
    if (this.reading || this.closed) return;
    const connection = createRedis(this.config, { blocking: true });
    connection.on('error', (err) => this.log.debug({ err: err.message }, 'finish notices connection error'));
    this.connection = connection;
    this.reading = this.readLoop(connection);
  }

  private async readLoop(connection: RedisClient): Promise<void> {
    // The stream is this instance's alone and new: read it from its start.
    let last = '0';
    while (!this.closed) {
      try {
        const reply = (await connection.xread('COUNT', 1000, 'BLOCK', 0, 'STREAMS', this.key, last)) as
          [string, [string, string[]][]][] | null;
        for (const [, entries] of reply ?? [])
          for (const [entryId, fields] of entries) {
            last = entryId;
            this.deliver(fields[1]);
          }
      } catch (err) {
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() sets it during the await
        if (this.closed) return;
        this.log.debug({ err: (err as Error).message }, 'finish notices read failed; reading again');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
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
    await this.reading?.catch(() => undefined);
  }
}
