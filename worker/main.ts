/**
 * A worker process pinned to one device:
 *   node --enable-source-maps dist/worker/main.js --device cpu --models text-direction,resnet50
 * Loads each model's session on the device, consumes the models' queues with batching, serves
 * /metrics and /healthz on METRICS_PORT (9464 + WORKER_INDEX), heartbeats into the worker
 * registry, and on SIGTERM stops taking jobs, finishes the batch in flight and exits 0.
 * The worker itself is worker/worker.ts (startWorker); this file reads the arguments and the
 * environment, sets up what belongs to the process, and turns signals into a graceful stop.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadConfig, warnDeprecatedSettings } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { workerOptions } from '../shared/options/worker.js';
import { startTracing, stopTracing } from '../shared/tracing.js';
import { startWorker, type RunningWorker } from './worker.js';

async function main(): Promise<void> {
  const options = workerOptions(loadConfig());
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: options.device },
      models: { type: 'string', default: options.models },
    },
  });
  // Before any queue or worker is made: BullMQ takes its telemetry when they are built.
  await startTracing('worker');
  const log = createLogger('worker', options.logging);
  warnDeprecatedSettings(log);
  // The thread budget: libvips threads per image (jobs already run side by side on libuv's
  // pool, sized by UV_THREADPOOL_SIZE: the fleet launcher sets it to the cores available).
  sharp.concurrency(options.sharpThreads || os.availableParallelism());

  let worker: RunningWorker | null = null;
  let exitCode = 0;
  const stop = async (reason: string) => {
    await worker!.close(reason);
    await stopTracing();
    process.exit(exitCode);
  };
  worker = await startWorker({
    ...options,
    device: values.device!,
    models: values.models!,
    log,
    // A dead session thread cannot be trusted again: drain and exit non-zero; the fleet launcher
    // (or the orchestrator) restarts the worker and the failed jobs are retried.
    onFatal: () => {
      exitCode = 1;
      if (!worker) process.exit(1);
      void stop('session thread died');
    },
    onShutdownTimeout: () => process.exit(1),
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  createLogger('worker').fatal({ err }, `worker failed to start: ${(err as Error).message}`);
  process.exit(1);
});
