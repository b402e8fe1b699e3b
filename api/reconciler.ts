/**
 * The reconciler: brings every model's accounting records back in line with the jobs they stand
 * for, so a crash at any point (an API between counting a submit and adding its job, a worker
 * between completing a job and recording it, a DELETE cut short) leaves each tenant's counts equal
 * to the truth within two periods at worst (each record is checked once a period). The counters
 * always equal the sum of the records (each script moves both at once); this walks the records, a
 * slice per tick (HSCAN), and settles those whose job disagrees, each in one atomic script
 * (shared/redis/reconcile-jobs.lua), so it needs no snapshot and is safe beside live traffic and
 * beside another replica doing the same.
 *
 * It runs in the API (every model's queue is there, with or without workers), on start-up and
 * then every tick; with several replicas, the one holding a model's `reconciling` key does it.
 * A model's passes start one period apart: a pass that ends early (few records: one tick) leaves
 * the model alone until the period is up, and its replica keeps the key meanwhile. Starting a
 * pass every tick instead cost Redis about eight commands per model per second on an idle hub.
 * A replica without the turn asks for it again only when the holder's key is due to expire.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { JobAccounting, type AccountingOptions } from '../shared/jobs/accounting.js';
import { BatchAccounting } from '../shared/batches/accounting.js';
import type { JobData, JobResult } from '../shared/jobs/payload.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { accountingKeys, modelQueueName } from '../shared/redis/keys.js';
import { finishedEntryData, finishedJobData } from '../shared/redis/bullmq-internals.js';
import { enqueueWebhookEvent, type WebhookJobData } from '../shared/webhooks/events.js';
import { entryOfRecord, itemResultBytes, type EntryData, type EntryResult } from '../shared/predict/entry.js';
import { itemResultOf } from '../shared/predict/view.js';

export interface ReconcilerOptions {
  prefix: string;
  /** The accounting keys' TTL and the retention a finish applies (as the workers'). */
  accounting: AccountingOptions;
  /**
   * A full pass over each model's records takes at most this long, ms
   * (MODELHUB_RECONCILE_PERIOD_MS); each tick handles its share of the records.
   * @defaultValue 30_000
   */
  periodMs: number;
  /** Time between ticks, ms. @defaultValue 1000 */
  tickMs?: number;
  /**
   * A submit's record whose job is not there yet is left alone this long, ms: its add may still be
   * under way (the API's Redis commands time out within seconds). @defaultValue 20_000
   */
  graceMs?: number;
  /** Each model's predict lane (coalesced predict entries), for the records of their items. */
  entries?: Map<string, Queue<EntryData, EntryResult>>;
}

/** Records checked per script call. */
const SLICE = 100;

interface Pass {
  cursor: string;
  startedAt: number;
}

export class Reconciler {
  private readonly owner = randomUUID();
  private readonly passes = new Map<string, Pass>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** When each model's last full pass ended (epoch ms). */
  readonly lastPassAt = new Map<string, number>();
  /** When each model's next pass may start here (epoch ms): its last one's start plus the period. */
  private readonly nextPassAt = new Map<string, number>();
  /** When another replica's turn at each model ends (epoch ms): the model is left alone here until then. */
  private readonly elsewhereUntil = new Map<string, number>();
  /** Models whose key of an earlier release this process has dropped already. */
  private readonly legacyDropped = new Set<string>();

  private readonly accounting: JobAccounting;
  private readonly batches: BatchAccounting;

  constructor(
    /** The API's read connection: a large job read here never delays a submit. */
    private readonly redis: RedisClient,
    /** Each model's queue, on that connection. */
    private readonly queues: Map<string, Queue<JobData, JobResult>>,
    private readonly webhooks: Queue<WebhookJobData>,
    private readonly log: Logger,
    private readonly options: ReconcilerOptions,
  ) {
    this.accounting = new JobAccounting(redis, options.prefix, options.accounting);
    this.batches = new BatchAccounting(redis, options.prefix, options.accounting.ttlS);
  }

  /** The first tick now (start-up), then one every tickMs. */
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'reconciler tick failed'))
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.timer = setTimeout(loop, this.options.tickMs ?? 1000).unref();
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One tick: each model whose turn it is here advances its pass by its share of the records. */
  async tick(): Promise<void> {
    for (const model of this.queues.keys()) {
      if (this.stopped) return;
      const now = Date.now();
      if (now < (this.elsewhereUntil.get(model) ?? 0)) continue;
      if (!this.passes.has(model) && now < (this.nextPassAt.get(model) ?? 0)) continue;
      if (await this.holdTurn(model)) await this.advance(model);
    }
  }

  /** Runs one whole fresh pass over every model now (tests; the ticks keep their own pace). */
  async reconcileAll(): Promise<void> {
    for (const model of this.queues.keys()) {
      this.passes.delete(model);
      await this.advance(model, Infinity);
    }
  }

  /**
   * Takes or keeps the model's turn here, for three ticks plus `forMs`; false when another replica
   * holds it, and then the model is left alone here until that turn's key expires. Asking every
   * tick instead cost Redis two commands per model per second for each replica without the turn.
   */
  private async holdTurn(model: string, forMs = 0): Promise<boolean> {
    const key = accountingKeys(this.options.prefix, model).reconciling;
    const ttl = forMs + 3 * (this.options.tickMs ?? 1000);
    if (await this.redis.set(key, this.owner, 'PX', ttl, 'NX')) return true;
    if ((await this.redis.get(key)) !== this.owner) {
      // -2 (gone since) or -1 (no expiry, never written so): ask again next tick.
      const left = await this.redis.pttl(key);
      if (left > 0) this.elsewhereUntil.set(model, Date.now() + left);
      return false;
    }
    await this.redis.pexpire(key, ttl);
    return true;
  }

  /** Checks the next slice of the model's records; `budget` records at most (default: this tick's share). */
  private async advance(model: string, budget?: number): Promise<void> {
    const keys = accountingKeys(this.options.prefix, model);
    let pass = this.passes.get(model);
    if (!pass) {
      pass = { cursor: '0', startedAt: Date.now() };
      this.passes.set(model, pass);
    }
    if (!this.legacyDropped.has(model)) {
      // Written by releases before records (a model's retained bytes now live in its usage hash).
      await this.redis.del(`${this.options.prefix}:${modelQueueName(model)}:retained:bytes`);
      this.legacyDropped.add(model);
    }
    const share =
      budget ??
      Math.max(
        SLICE,
        Math.ceil(((await this.redis.hlen(keys.records)) * (this.options.tickMs ?? 1000)) / this.options.periodMs),
      );
    let checked = 0;
    do {
      const [next, flat] = await this.redis.hscan(keys.records, pass.cursor, 'COUNT', SLICE);
      pass.cursor = next;
      const ids = flat.filter((_, i) => i % 2 === 0);
      checked += ids.length;
      for (let i = 0; i < ids.length; i += SLICE) await this.check(model, ids.slice(i, i + SLICE));
    } while (pass.cursor !== '0' && checked < share);
    if (pass.cursor === '0') {
      // Batch chunks' records, once per pass: those whose staged inputs are gone are given back.
      const released = await this.batches.reconcile(model, this.options.graceMs ?? 20_000);
      if (released > 0) this.log.info({ model, bytes: released }, 'reconciled batch chunk records');
      this.passes.delete(model);
      const now = Date.now();
      this.lastPassAt.set(model, now);
      const next = pass.startedAt + this.options.periodMs;
      this.nextPassAt.set(model, next);
      // The turn stays here until then (and for as long after as a held turn lasts), so another
      // replica does not start a pass in between; if this one dies, the key expires.
      if (budget === undefined && next > now) await this.holdTurn(model, next - now);
    }
  }

  private async check(model: string, ids: string[]): Promise<void> {
    const { released, toFinish, toRemove } = await this.accounting.reconcile(
      model,
      ids,
      this.options.graceMs ?? 20_000,
    );
    // An entry's calls come back one record each (an id may come twice): its one finish settles them all.
    const finished = new Set<string>();
    for (const id of toFinish) {
      const job = entryOfRecord(id) ?? id;
      if (finished.has(job)) continue;
      finished.add(job);
      await this.finish(model, id);
    }
    // A coalesced item's result lives in its entry, which its retention removes with the others'.
    for (const id of toRemove) if (!entryOfRecord(id)) await this.remove(model, id);
    const settled = released + toFinish.length + toRemove.length;
    if (settled > 0)
      this.log.info({ model, released, finished: toFinish.length, removed: toRemove.length }, 'reconciled job records');
  }

  /** A finished job whose worker never recorded it: its `completed` event (once), then its finish. */
  private async finish(model: string, id: string): Promise<void> {
    const entry = entryOfRecord(id);
    if (entry) return this.finishEntry(model, entry);
    const queue = this.queues.get(model)!;
    const job = await queue.getJob(id);
    if (!job) return;
    if (job.data.webhook) {
      await enqueueWebhookEvent(this.webhooks, { id, model, webhook: job.data.webhook }, 'completed');
    }
    const dataWithoutInput = finishedJobData(job.data);
    // The jobs its retention pushes out leave in the same script.
    await this.accounting.finish(model, { id, tenant: job.data.tenant, dataWithoutInput });
  }

  /** A finished predict entry whose worker never recorded it: each of its items' finish, in one script. */
  private async finishEntry(model: string, entryId: string): Promise<void> {
    const entry = await this.options.entries?.get(model)?.getJob(entryId);
    if (!entry) return;
    const result = entry.returnvalue as EntryResult | null;
    const items = entry.data.items.map((it) => {
      const own = itemResultOf(result, it.id);
      return { id: it.id, tenant: it.tenant, resultBytes: own ? itemResultBytes(own) : 0 };
    });
    const dataWithoutInputs = finishedEntryData(entry.data);
    await this.accounting.finishEntry(model, { id: entryId, items, dataWithoutInputs });
  }

  /**
   * A job whose result retention pushed out, still kept (a record at x: written by a release
   * before the finish scripts removed such jobs themselves): removed, then its record goes.
   */
  private async remove(model: string, id: string): Promise<void> {
    await this.queues.get(model)!.remove(id);
    await this.accounting.release(model, id);
  }
}
