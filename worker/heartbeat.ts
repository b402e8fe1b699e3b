/**
 * The worker's entry in the worker registry (shared/worker-registry.ts): published at start and
 * every `intervalMs`, removed when the worker stops. Readers count a worker silent for
 * MISSED_HEARTBEATS of its intervals as dead.
 */
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { publishHeartbeat, removeWorker, type WorkerInfo } from '../shared/worker-registry.js';

export interface HeartbeatOptions {
  connection: RedisClient;
  /** Key prefix of the hub (MODELHUB_PREFIX). */
  prefix: string;
  /** Interval, ms; also published in the entry, so readers know when this worker is late. */
  intervalMs: number;
  /** The entry as of now (its load and heartbeat time change between beats). */
  info: () => WorkerInfo;
  log: Logger;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (this.timer) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
  }

  /** Stops beating; the entry stays until `remove()` (or until readers find it silent). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes this worker out of the registry (a failure is ignored: the entry ages out). */
  async remove(): Promise<void> {
    this.stop();
    const { connection, prefix, info } = this.options;
    await removeWorker(connection, prefix, info().id).catch(() => undefined);
  }

  private beat(): Promise<void> {
    const { connection, prefix, info, log } = this.options;
    return publishHeartbeat(connection, prefix, info()).catch((err: Error) =>
      log.warn({ err: err.message }, 'heartbeat failed'),
    );
  }
}
