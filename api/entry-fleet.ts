/**
 * Whether a model's predict calls may be coalesced now: only while a live worker that reads
 * predict entries serves it (the worker registry's `entries`). Otherwise, in a fleet of earlier
 * releases, an entry would wait on a lane nobody consumes. Read from Redis at most every
 * `refreshMs`, in the background: the answer on the request path is the last one read.
 *
 * It also says which entry payload to write (shared/predict/entry.ts): the lowest version any of
 * those workers reads, so during a rolling upgrade a worker of the previous release is never
 * handed an entry it cannot read.
 */
import { ENTRY_PAYLOAD_VERSION } from '../shared/predict/entry.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { listLiveWorkers } from '../shared/worker-registry.js';

export class EntryFleet {
  /** Model → the lowest entry payload version among the live workers reading entries that serve it. */
  private versions = new Map<string, number>();
  /** Model → how many of those workers there are. */
  private counts = new Map<string, number>();
  private readAt = 0;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly refreshMs = 2000,
  ) {}

  /** True when a live worker reading entries serves `model` (as of the last read). */
  serves(model: string): boolean {
    this.readIfStale();
    return this.versions.has(model);
  }

  /** The entry payload version to write for `model` now (1 when no worker reading entries serves it). */
  payloadVersion(model: string): number {
    this.readIfStale();
    return Math.min(this.versions.get(model) ?? 1, ENTRY_PAYLOAD_VERSION);
  }

  /** How many live workers reading entries serve `model` (as of the last read). */
  readers(model: string): number {
    this.readIfStale();
    return this.counts.get(model) ?? 0;
  }

  private readIfStale(): void {
    if (Date.now() - this.readAt > this.refreshMs) void this.read();
  }

  /** Reads the registry now (after any read in progress, which may predate what the caller knows). */
  async refresh(): Promise<void> {
    await this.reading;
    return this.read();
  }

  private read(): Promise<void> {
    this.reading ??= listLiveWorkers(this.redis, this.prefix)
      .then((workers) => {
        const versions = new Map<string, number>();
        const counts = new Map<string, number>();
        for (const w of workers) {
          const reads = w.entries ?? 0;
          if (reads < 1) continue;
          for (const m of w.models) {
            versions.set(m, Math.min(versions.get(m) ?? reads, reads));
            counts.set(m, (counts.get(m) ?? 0) + 1);
          }
        }
        this.versions = versions;
        this.counts = counts;
      })
      .catch(() => undefined)
      .finally(() => {
        this.readAt = Date.now();
        this.reading = null;
      });
    return this.reading;
  }
}
