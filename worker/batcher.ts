/**
 * The dynamic batcher: items submitted one by one are grouped into batches of up to
 * `maxBatchSize` (and, optionally, a cost budget such as padded tokens), flushed as soon as a
 * batch is full or `maxDelayMs` after its first item arrived, whichever comes first.
 * One batch runs at a time; items arriving meanwhile form the next batch.
 */
/** A value may still be a promise: work after the batch (postprocessing) need not hold the next batch. */
export type ItemOutcome<R> = { ok: true; value: R | PromiseLike<R> } | { ok: false; error: unknown };

export interface BatcherOptions<T> {
  /** Most items in one batch. */
  maxBatchSize: number;
  /** Longest wait, ms, from a batch's first item to its flush. 0 flushes on the next tick. */
  maxDelayMs: number;
  /** Optional budget: a batch is closed before `batchCost(items)` would exceed it (an item alone always fits). */
  maxBatchCost?: number;
  batchCost?: (items: readonly T[]) => number;
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
  private deadlinePassed = false;
  private running: Promise<void> | null = null;

  constructor(
    private readonly runBatch: (items: T[]) => Promise<ItemOutcome<R>[]>,
    private readonly options: BatcherOptions<T>,
  ) {
    if (options.maxBatchSize < 1) throw new RangeError('maxBatchSize must be at least 1');
  }

  get queued(): number {
    return this.pending.length;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, enqueuedAt: Date.now(), resolve, reject });
      if (this.pending.length === 1) this.armTimer();
      this.maybeFlush();
    });
  }

  /** Resolves once everything submitted so far has run. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.running) {
      if (!this.running) {
        this.deadlinePassed = true;
        this.maybeFlush();
      }
      await this.running;
    }
  }

  private armTimer(): void {
    this.clearTimer();
    this.deadlinePassed = false;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.deadlinePassed = true;
      this.maybeFlush();
    }, this.options.maxDelayMs);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private isFull(): boolean {
    return this.takeCount() < this.pending.length || this.pending.length >= this.options.maxBatchSize;
  }

  /** How many pending items (in arrival order) fit into the next batch. */
  private takeCount(): number {
    const limit = Math.min(this.pending.length, this.options.maxBatchSize);
    const { maxBatchCost, batchCost } = this.options;
    if (maxBatchCost === undefined || !batchCost) return limit;
    let n = 1;
    while (n < limit && batchCost(this.pending.slice(0, n + 1).map((p) => p.item)) <= maxBatchCost) n += 1;
    return n;
  }

  private maybeFlush(): void {
    if (this.running || this.pending.length === 0) return;
    if (!this.deadlinePassed && !this.isFull()) return;
    const batch = this.pending.splice(0, this.takeCount());
    this.clearTimer();
    if (this.pending.length > 0) {
      // The rest waited already; they go as soon as the backend is free, their clock started earlier.
      const waited = Date.now() - this.pending[0].enqueuedAt;
      this.deadlinePassed = waited >= this.options.maxDelayMs;
      if (!this.deadlinePassed) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.deadlinePassed = true;
          this.maybeFlush();
        }, this.options.maxDelayMs - waited);
      }
    } else {
      this.deadlinePassed = false;
    }
    this.running = this.execute(batch).finally(() => {
      this.running = null;
      this.maybeFlush();
    });
  }

  private async execute(batch: Pending<T, R>[]): Promise<void> {
    let outcomes: ItemOutcome<R>[];
    try {
      outcomes = await this.runBatch(batch.map((p) => p.item));
      // Every item must get an outcome: an unsettled item would hang its job forever.
      if (outcomes.length !== batch.length || outcomes.some((o) => o === undefined)) {
        throw new Error(`batch runner returned ${outcomes.length} results for ${batch.length} items`);
      }
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
