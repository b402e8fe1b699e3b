/**
 * Whether a model's predict calls may be coalesced now: only while a live worker that reads
 * predict entries serves it (the worker registry's `entries`). Otherwise, in a fleet of earlier
 * releases, an entry would wait on a lane nobody consumes. Read from Redis at most every
 * `refreshMs`, in the background: the answer on the request path is the last one read.
 */
import { ENTRY_PAYLOAD_VERSION } from '../shared/predict/entry.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { listLiveWorkers } from '../shared/worker-registry.js';

export class EntryFleet {
  private models = new Set<string>();
  private readAt = 0;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly refreshMs = 2000,
  ) {}

  /** True when a live worker reading entries serves `model` (as of the last read). */
  serves(model: string): boolean {
    if (Date.now() - this.readAt > this.refreshMs) void this.read();
    return this.models.has(model);
  }

  /** Reads the registry now (after any read in progress, which may predate what the caller knows). */
  async refresh(): Promise<void> {
    await this.reading;
    return this.read();
  }

  private read(): Promise<void> {
    this.reading ??= listLiveWorkers(this.redis, this.prefix)
      .then((workers) => {
        const models = new Set<string>();
        for (const w of workers) if ((w.entries ?? 0) >= ENTRY_PAYLOAD_VERSION) for (const m of w.models) models.add(m);
        this.models = models;
      })
      .catch(() => undefined)
      .finally(() => {
        this.readAt = Date.now();
        this.reading = null;
      });
    return this.reading;
  }
}
