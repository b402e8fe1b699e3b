/**
 * The continuous batcher. Items submitted one by one run in inference batches (one session.run
 * each; in this file, "batch" means those, not the batch API's batches, whose chunks feed items
 * in through worker/item-intake.ts), one batch at a time:
 * - while the backend is idle, whatever is queued runs at once (no timer delays a job when
 *   there is nothing else to do); items arriving while a batch runs gather into the next one,
 *   which starts as soon as the backend is free (as Hugging Face TEI's queue does);
 * - `maxDelayMs` only holds a batch open while fewer than `minBatchSize` items are queued
 *   (with the default minimum of 1 it never does);
 * - a batch takes items in arrival order up to `maxBatchSize`, closes before an optional cost
 *   budget (e.g. padded tokens) would be exceeded, and closes at the first item whose `batchKey`
 *   differs (its tensor shape), as Triton's dynamic batcher does: one batch, one session.run.
 */
/** A value may still be a promise: work after the batch (postprocessing) need not hold the next batch. */
export type ItemOutcome<R> = { ok: true; value: R | PromiseLike<R> } | { ok: false; error: unknown };

export interface DynamicBatcherOptions<T> {
  /** Most items in one batch. */
  maxBatchSize: number;
  /** Longest an item waits for `minBatchSize` items to gather while the backend is idle, ms. */
  maxDelayMs: number;
  /** Items a batch waits for (up to `maxDelayMs`) while the backend is idle. Default 1: run at once. */
  minBatchSize?: number;
  /** Optional budget: a batch is closed before `batchCost(items)` would exceed it (an item alone always fits). */
  maxBatchCost?: number;
  batchCost?: (items: readonly T[]) => number;
  /** Items batch together only when their keys are equal; a batch closes at the first item whose key differs. */
  batchKey?: (item: T) => string;
}

interface Pending<T, R> {
  item: T;
  enqueuedAt: number;
  resolve: (value: R | PromiseLike<R>) => void;
  reject: (error: unknown) => void;
}

export class DynamicBatcher<T, R> {
  private pending: Pending<T, R>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private draining = false;
  private running: Promise<void> | null = null;

  constructor(
    private readonly runBatch: (items: T[]) => Promise<ItemOutcome<R>[]>,
    private readonly options: DynamicBatcherOptions<T>,
  ) {
    if (options.maxBatchSize < 1) throw new RangeError('maxBatchSize must be at least 1');
    if ((options.minBatchSize ?? 1) < 1) throw new RangeError('minBatchSize must be at least 1');
  }

  get queued(): number {
    return this.pending.length;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, enqueuedAt: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has run. */
  async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.pending.length > 0 || this.running) {
        this.maybeFlush();
        await this.running;
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Looks at the queue once the current tick's work is done: items submitted in the same tick
   * (e.g. several jobs handed over at once) form one batch. Not a timer: nothing waits on a clock.
   */
  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.maybeFlush();
    });
  }

  /** How many pending items (in arrival order) form the next batch, and whether it can grow. */
  private nextBatch(): { count: number; closed: boolean } {
    const { maxBatchSize, maxBatchCost, batchCost, batchKey } = this.options;
    const limit = Math.min(this.pending.length, maxBatchSize);
    const key = batchKey?.(this.pending[0].item);
    let n = 1;
    while (n < limit) {
      if (batchKey && batchKey(this.pending[n].item) !== key) return { count: n, closed: true };
      if (
        maxBatchCost !== undefined &&
        batchCost &&
        batchCost(this.pending.slice(0, n + 1).map((p) => p.item)) > maxBatchCost
      )
        return { count: n, closed: true };
      n += 1;
    }
    return { count: n, closed: n >= maxBatchSize };
  }

  private maybeFlush(): void {
    if (this.running || this.pending.length === 0) return;
    const { count, closed } = this.nextBatch();
    const waitedMs = performance.now() - this.pending[0].enqueuedAt;
    const ready =
      closed || this.draining || count >= (this.options.minBatchSize ?? 1) || waitedMs >= this.options.maxDelayMs;
    if (!ready) {
      this.armTimer(this.options.maxDelayMs - waitedMs);
      return;
    }
    this.clearTimer();
    const batch = this.pending.splice(0, count);
    this.running = this.execute(batch).finally(() => {
      this.running = null;
      // The next batch gathered while this one ran: it goes now.
      this.maybeFlush();
    });
  }

  private armTimer(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.maybeFlush();
      },
      Math.max(0, ms),
    );
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async execute(batch: Pending<T, R>[]): Promise<void> {
    let outcomes: ItemOutcome<R>[];
    try {
      // A runner may return a short or sparse array.
      const returned: (ItemOutcome<R> | undefined)[] = await this.runBatch(batch.map((p) => p.item));
      // Every item must get an outcome: an unsettled item would hang its job forever.
      if (returned.length !== batch.length || !returned.every((o) => o !== undefined)) {
        throw new Error(`batch runner returned ${returned.length} results for ${batch.length} items`);
      }
      outcomes = returned;
    } catch (error) {
      outcomes = batch.map(() => ({ ok: false, error }));
    }
    batch.forEach((p, i) => {
      const o = outcomes[i];
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }
}
