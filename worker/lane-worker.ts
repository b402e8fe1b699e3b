/**
 * What every lane's BullMQ Worker shares (the model's job queue, its predict lane and its batch
 * lane): the lock and stall settings a fault test relies on, started by the worker's own run()
 * (autorun off), named after the worker, traced; and, where a run can be taken over by another
 * worker, the rule that a run whose lock renewal failed stops and says nothing.
 */
import { Worker, type WorkerOptions } from 'bullmq';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { bullTelemetry } from '../shared/tracing.js';
import type { WorkerMetrics } from './metrics.js';

export interface LaneWorkerSettings {
  prefix: string;
  connection: RedisClient;
  workerId: string;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

/** The BullMQ options of a lane's worker that runs `concurrency` jobs at once. */
export function laneWorkerOptions(
  settings: LaneWorkerSettings,
  concurrency: number,
): WorkerOptions & { connection: RedisClient } {
  return {
    connection: settings.connection,
    prefix: settings.prefix,
    concurrency: Math.max(1, concurrency),
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    maxStalledCount: settings.maxStalledCount,
    autorun: false,
    name: settings.workerId,
    // Tracing on: each job's `process` span continues the trace its submit started.
    telemetry: bullTelemetry(),
  };
}

/**
 * Another worker may be running these jobs now (their lock lapsed, e.g. this process was
 * stopped): the run is aborted, so it neither finishes nor reports them, and counted.
 */
export function abandonOnLockLoss(
  worker: Worker,
  model: string,
  what: string,
  log: Logger,
  metrics: Pick<WorkerMetrics, 'locksLost'>,
): void {
  worker.on('lockRenewalFailed', (ids: string[]) => {
    log.warn({ model, [what]: ids }, `lost the lock of running ${what}; abandoning them`);
    for (const id of ids) worker.cancelJob(id, 'lock lost');
    metrics.locksLost.inc({ model }, ids.length);
  });
}
