/**
 * Coalescing of concurrent `predict` calls (MODELHUB_PREDICT_COALESCE_MS): calls for one model
 * that arrive while another call for it is in flight wait up to the window, or until the model's
 * max_batch_size calls are waiting, and then ride in one queue entry (predict-entries.ts). A call
 * that finds nothing in flight goes straight out as a job of its own: a single caller pays no
 * window. Predict has one priority band (5), so the model is the key.
 *
 * Backlog hold: when the window closes while this instance already has `holdAt` calls of the
 * model sent and unanswered (enough to keep every worker reading the model's entries busy), the
 * entry keeps filling until it is full, an answer brings the backlog below `holdAt`, or `holdMs`
 * has passed since its window opened. Its calls would only wait in the queue behind that backlog;
 * here they wait as one entry instead of several, and each entry costs Redis a fixed amount
 * (BullMQ's add, fetch and finish, the accounting scripts) whatever it carries.
 *
 * Arrival hold: a window that closes while calls are still arriving (one joined less than a
 * window ago) and this instance has some of the model's calls sent and unanswered keeps filling,
 * a window at a time, until the calls stop, it is full, nothing is in flight any more, or `holdMs`
 * has passed since it opened. After a burst of answers the callers come back spread out by the
 * API's own intake (about 0.5 ms of CPU a call): without it the entries went out at each 1 ms
 * window as 2 to 5 calls, and at 32 clients the fill could settle near 32 / 3 instead of 16, with
 * up to a quarter less throughput and a third more Redis per call (docs/performance.md, "5
 * December, late morning"). With nothing in flight the window closes on time: the worker would idle.
 *
 * Fair fill: an entry is filled in arrival order, and while several tenants wait no tenant takes
 * more than its share of the entry (capacity / tenants waiting, rounded up); what a tenant could
 * not place waits for the next entry, which is sent at once.
 */

export interface Waiting<T> {
  tenant: string | null;
  call: T;
}

/**
 * The calls an entry of `capacity` takes from `waiting` (in arrival order): each tenant up to its
 * share while others wait, then, if room is left, the next in arrival order. Returns the indexes
 * taken, in arrival order.
 */
export function fairFill(tenants: (string | null)[], capacity: number): number[] {
  if (tenants.length <= capacity) return tenants.map((_, i) => i);
  const distinct = new Set(tenants).size;
  const share = Math.ceil(capacity / distinct);
  const taken: number[] = [];
  const perTenant = new Map<string | null, number>();
  const skipped: number[] = [];
  for (const [i, t] of tenants.entries()) {
    if (taken.length >= capacity) break;
    const n = perTenant.get(t) ?? 0;
    if (n < share) {
      taken.push(i);
      perTenant.set(t, n + 1);
    } else skipped.push(i);
  }
  for (const i of skipped) {
    if (taken.length >= capacity) break;
    taken.push(i);
  }
  return taken.sort((a, b) => a - b);
}

export interface CoalescerOptions<T, R> {
  /** The window, ms; 0 turns coalescing off. */
  windowMs: number;
  /** Most calls in one entry (the model's max_batch_size). */
  capacity: (model: string) => number;
  /**
   * Calls of the model sent and unanswered at which a closed window holds its entry for more
   * (see the class doc); 0: never hold.
   */
  holdAt?: (model: string) => number;
  /** Longest an entry holds (backlog or arrival hold), ms from its window's opening (at least the window). */
  holdMs?: number;
  /** Whether entries can be served now (a worker that reads them serves the model). */
  enabled: (model: string) => boolean;
  /** A call sent alone (a job of its own). */
  single: (model: string, call: T) => Promise<R>;
  /** Calls sent as one entry: one promise per call, in order. */
  entry: (model: string, calls: T[]) => Promise<R>[];
}

interface Pending<T, R> {
  tenant: string | null;
  call: T;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class PredictCoalescer<T, R> {
  private readonly inFlight = new Map<string, number>();
  private readonly pending = new Map<string, Pending<T, R>[]>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Models whose forming entry is held past its window (the backlog was deep when it closed). */
  private readonly held = new Set<string>();
  /** Each forming entry's window: when it opened and when its last call joined (performance.now()). */
  private readonly windows = new Map<string, { openedAt: number; lastJoinAt: number }>();

  constructor(private readonly options: CoalescerOptions<T, R>) {}

  async predict(model: string, tenant: string | null, call: T): Promise<R> {
    const busy = (this.inFlight.get(model) ?? 0) > 0;
    this.inFlight.set(model, (this.inFlight.get(model) ?? 0) + 1);
    try {
      if (!busy || this.options.windowMs <= 0 || !this.options.enabled(model))
        return await this.options.single(model, call);
      return await new Promise<R>((resolve, reject) => this.join(model, { tenant, call, resolve, reject }));
    } finally {
      const left = (this.inFlight.get(model) ?? 1) - 1;
      if (left > 0) this.inFlight.set(model, left);
      else this.inFlight.delete(model);
      if (this.held.has(model) && !this.backlogged(model)) this.flush(model);
    }
  }

  /** Calls of `model` this instance has sent and not yet answered. */
  private sent(model: string): number {
    return (this.inFlight.get(model) ?? 0) - (this.pending.get(model)?.length ?? 0);
  }

  /** Whether this instance has at least `holdAt` calls of `model` sent and unanswered. */
  private backlogged(model: string): boolean {
    const holdAt = this.options.holdAt?.(model) ?? 0;
    if (holdAt <= 0) return false;
    return this.sent(model) >= holdAt;
  }

  /**
   * The window closed: the entry goes now, holds while the backlog is deep (at most until holdMs),
   * or, while calls still arrive and some are in flight, waits one more window (the arrival hold).
   */
  private windowClosed(model: string): void {
    this.timers.delete(model);
    const holdMs = this.options.holdMs ?? 0;
    const windowMs = this.options.windowMs;
    const window = this.windows.get(model);
    if (holdMs > windowMs && window) {
      const now = performance.now();
      const holdLeft = holdMs - (now - window.openedAt);
      if (this.backlogged(model)) {
        this.held.add(model);
        this.timers.set(
          model,
          setTimeout(() => this.flush(model), Math.max(0, holdLeft)),
        );
        return;
      }
      const quietFor = now - window.lastJoinAt;
      if (quietFor < windowMs && holdLeft > 0 && this.sent(model) > 0) {
        this.timers.set(
          model,
          setTimeout(() => this.windowClosed(model), Math.min(windowMs - quietFor, holdLeft)),
        );
        return;
      }
    }
    this.flush(model);
  }

  private join(model: string, p: Pending<T, R>): void {
    const queue = this.pending.get(model) ?? [];
    this.pending.set(model, queue);
    queue.push(p);
    const now = performance.now();
    const window = this.windows.get(model);
    if (window) window.lastJoinAt = now;
    else this.windows.set(model, { openedAt: now, lastJoinAt: now });
    if (queue.length >= Math.max(1, this.options.capacity(model))) this.flush(model);
    else if (!this.timers.has(model))
      this.timers.set(
        model,
        setTimeout(() => this.windowClosed(model), this.options.windowMs),
      );
  }

  /** Sends one entry; calls that did not fit (fair fill) go in the next, sent at once. */
  private flush(model: string): void {
    clearTimeout(this.timers.get(model));
    this.timers.delete(model);
    this.held.delete(model);
    this.windows.delete(model);
    let queue = this.pending.get(model) ?? [];
    while (queue.length > 0) {
      const capacity = Math.max(1, this.options.capacity(model));
      const picked = new Set(
        fairFill(
          queue.map((p) => p.tenant),
          capacity,
        ),
      );
      const entry = queue.filter((_, i) => picked.has(i));
      queue = queue.filter((_, i) => !picked.has(i));
      this.send(model, entry);
    }
    this.pending.delete(model);
  }

  private send(model: string, entry: Pending<T, R>[]): void {
    let answers: Promise<R>[];
    try {
      answers =
        entry.length === 1
          ? [this.options.single(model, entry[0].call)]
          : this.options.entry(
              model,
              entry.map((p) => p.call),
            );
    } catch (err) {
      for (const p of entry) p.reject(err);
      return;
    }
    for (const [i, p] of entry.entries()) answers[i].then(p.resolve, p.reject);
  }
}
