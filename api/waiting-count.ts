/**
 * Backpressure without a Redis read per request: a model's waiting-job count is read at most
 * once per `maxAgeMs` while the queue is far from its limit (under half of it, counting the
 * jobs this API added since the read). Near the limit every submission reads it again, so the
 * limit itself is exact (as exact as concurrent submissions allow, as before).
 */
export interface WaitingCountOptions {
  limit: number;
  maxAgeMs?: number;
  read: () => Promise<number>;
  now?: () => number;
}

export class WaitingCount {
  private count = 0;
  private readAt = -Infinity;
  private addedSince = 0;

  constructor(private readonly options: WaitingCountOptions) {}

  /** The waiting count to judge the next submission by. */
  async current(): Promise<number> {
    const now = (this.options.now ?? Date.now)();
    const estimate = this.count + this.addedSince;
    if (now - this.readAt < (this.options.maxAgeMs ?? 1000) && estimate < this.options.limit / 2) return estimate;
    this.count = await this.options.read();
    this.readAt = now;
    this.addedSince = 0;
    return this.count;
  }

  /** A job was added to the queue by this process. */
  added(): void {
    this.addedSince += 1;
  }
}
