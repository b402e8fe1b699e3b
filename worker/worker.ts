/**
 * The worker as a library: `startWorker(options)` loads the models' sessions on one device,
 * consumes their queues (interactive jobs and batch chunks) into inference batches, serves /metrics
 * and /healthz, heartbeats into the worker registry, and returns a handle whose `close()` stops
 * taking jobs, finishes the inference batch in flight and lets go of everything it holds.
 *
 * What belongs to the whole process stays with the entry point (worker/main.ts): arguments,
 * signals, tracing, libvips threads and the exit code. So a test (or another program) can run a
 * worker, or several, inside its own process.
 */
import os from 'node:os';
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { createLogger, type Logger } from '../shared/logger.js';
import { createRegistry, registerQueueDepth, serveMetrics } from '../shared/metrics.js';
import type { WorkerOptions } from '../shared/options/worker.js';
import { createRedis } from '../shared/redis/connection.js';
import { WEBHOOK_QUEUE, modelQueueName } from '../shared/redis/keys.js';
import { webhookJobOptions, type WebhookJobData } from '../shared/webhooks/events.js';
import type { WorkerInfo } from '../shared/worker-registry.js';
import { bullTelemetry } from '../shared/tracing.js';
import { deviceName, parseDevice } from './backend/device.js';
import { createWorkerMetrics } from './metrics.js';
import { QueueConsumer } from './queue-consumer.js';
import { BatchConsumer } from './batch-consumer.js';
import { EntryConsumer } from './entry-consumer.js';
import { ENTRY_PAYLOAD_VERSION } from '../shared/predict/entry.js';
import { ItemIntake } from './item-intake.js';
import { AdmissionGate } from './admission-gate.js';
import { loadRunners } from './runners.js';
import { Heartbeat } from './heartbeat.js';
import { WorkerShutdown } from './shutdown.js';
import { VERSION } from '../shared/version.js';

/**
 * The worker's options (shared/options/worker.ts: resolved once by the entry point with
 * workerOptions(config)), and what only a program that starts one can give.
 */
export interface StartWorkerOptions extends WorkerOptions {
  /** @defaultValue a logger named `worker` with `logging` */
  log?: Logger;
  /**
   * An onnxruntime session thread died: the worker cannot be trusted again. It is already
   * draining when this is called; the entry point exits non-zero so the worker is restarted.
   * @defaultValue none (the worker drains and stops)
   */
  onFatal?: (err: Error) => void;
  /**
   * The graceful stop took longer than `shutdownTimeoutMs`.
   * @defaultValue none (logged; `close()` keeps waiting)
   */
  onShutdownTimeout?: () => void;
}

export interface RunningWorker {
  /** Its id in the worker registry (host-pid-random). */
  id: string;
  /** Where /metrics and /healthz answer. */
  metricsUrl: string;
  /** The models it serves. */
  models: string[];
  /** Stops taking jobs, finishes the inference batch in flight, then lets go of everything; once. */
  close(reason?: string): Promise<void>;
}

export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const log = options.log ?? createLogger('worker', options.logging);
  const device = parseDevice(options.device);
  const registry = createRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  let shutdown: WorkerShutdown | null = null;
  // Session threads that died; a worker with one cannot be trusted again and drains.
  const deaths: Error[] = [];
  const runners = await loadRunners(options, device, options.models, log, metrics, (err) => {
    log.fatal({ err: err.message }, 'an onnxruntime session thread died; restarting the worker');
    deaths.push(err);
    if (deaths.length > 1) return;
    void shutdown?.run('session thread died');
    options.onFatal?.(err);
  });

  const workerId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const connection = createRedis(options.redis, { blocking: true });
  connection.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: webhookJobOptions(options.webhooks),
    // Tracing on: a job's webhook events carry its trace context to the delivery worker.
    telemetry: bullTelemetry(),
  });
  webhooks.on('error', (err) => log.warn({ err: err.message }, 'webhook queue error'));
  // One intake per model: its interactive jobs (entries of one item) and its batch chunks (entries
  // of up to BATCH_CHUNK_SIZE items) both feed the model's batcher through it.
  // One gate for the worker's very large images, whichever model they are for.
  const { batcher } = options;
  const heavy =
    batcher.heavyImagePixels > 0
      ? { gate: new AdmissionGate(batcher.heavyItemsInFlight), minPixels: batcher.heavyImagePixels }
      : undefined;
  const intakes = runners.map(
    (runner) =>
      new ItemIntake(runner, {
        bulkInFlight: batcher.bulkItemsInFlight || 2 * runner.entry.manifest.batching.max_batch_size,
        heavy,
      }),
  );
  // What both lanes' BullMQ workers share: where, who, and how jobs are locked and recovered.
  const lane = {
    prefix: options.prefix,
    connection,
    workerId,
    webhooks,
    lockDurationMs: options.lockMs,
    stalledIntervalMs: options.stalledIntervalMs,
    maxStalledCount: options.maxStalled,
  };
  const consumers = intakes.map(
    (intake) =>
      new QueueConsumer(intake, metrics, log, { ...lane, claimTtlS: options.claimTtlS, retention: options.retention }),
  );
  // Coalesced predict entries: a lane of their own, which only workers that read entries consume.
  const entryConsumers = intakes.map(
    (intake) =>
      new EntryConsumer(intake, metrics, log, { ...lane, claimTtlS: options.claimTtlS, retention: options.retention }),
  );
  const batchConsumers = intakes.map(
    (intake) =>
      new BatchConsumer(intake, metrics, log, {
        ...lane,
        chunksAtOnce: options.bulkChunksAtOnce,
        liveTtlS: options.batchLiveTtlS,
        retentionS: options.retention.JOB_RETENTION_S,
      }),
  );

  // Queue depth of the models this worker serves, read from Redis when Prometheus scrapes.
  const depthQueues = runners.map(
    (r) =>
      [
        r.entry.manifest.name,
        new Queue(modelQueueName(r.entry.manifest.name), { connection, prefix: options.prefix }),
      ] as [string, Queue],
  );
  registerQueueDepth(registry, () => depthQueues);

  const models = runners.map((r) => r.entry.manifest.name);
  const stopping = () => shutdown?.started === true;
  const server = await serveMetrics(registry, options.metricsPort, options.metricsHost, () => ({
    status: stopping() ? 503 : 200,
    body: {
      status: stopping() ? 'stopping' : 'ok',
      worker: workerId,
      device: deviceName(device),
      models,
      // Thread ids for per-thread CPU accounting from /proc (npm run bench reads them).
      threads: {
        pid: process.pid,
        sessions: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.sessionThreads])),
      },
    },
  }));
  const port = boundPort(server, options.metricsPort);

  const startedAt = new Date().toISOString();
  const info = (): WorkerInfo => ({
    id: workerId,
    device: deviceName(device),
    models,
    pid: process.pid,
    host: os.hostname(),
    version: VERSION,
    started_at: startedAt,
    heartbeat_at: Date.now(),
    heartbeat_ms: options.heartbeatMs,
    batching: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.batching])),
    weights: Object.fromEntries(
      runners.map((r) => [
        r.entry.manifest.name,
        { file: r.weights.file, sha256: r.weights.sha256, kind: r.weights.kind, verification: r.weights.verification },
      ]),
    ),
    entries: ENTRY_PAYLOAD_VERSION,
    load: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.inFlight])),
  });
  const heartbeat = new Heartbeat({
    connection,
    prefix: options.prefix,
    intervalMs: options.heartbeatMs,
    info,
    log,
  });
  heartbeat.start();

  for (const c of consumers) c.start();
  for (const c of batchConsumers) c.start();
  for (const c of entryConsumers) c.start();
  metrics.up.set({ device: deviceName(device) }, 1);
  log.info({ worker: workerId, device: deviceName(device), port, models }, 'worker ready');

  shutdown = new WorkerShutdown(
    [
      {
        what: 'readiness and heartbeat',
        run: async () => {
          metrics.up.set({ device: deviceName(device) }, 0);
          heartbeat.stop();
        },
      },
      // worker.close() stops fetching, then waits for the active jobs (the inference batch in flight) and
      // stores their results.
      {
        what: 'consumers',
        run: () => Promise.all([...consumers, ...batchConsumers, ...entryConsumers].map((c) => c.close())),
      },
      { what: 'sessions', run: () => Promise.all(runners.map((r) => r.close())) },
      { what: 'registry entry', run: () => heartbeat.remove(), mayFail: true },
      { what: 'webhook queue', run: () => webhooks.close(), mayFail: true },
      { what: 'depth queues', run: () => Promise.all(depthQueues.map(([, q]) => q.close().catch(() => undefined))) },
      { what: 'redis', run: () => connection.quit(), mayFail: true },
      { what: 'metrics listener', run: async () => void server.close() },
    ],
    { log, timeoutMs: options.shutdownTimeoutMs, onTimeout: options.onShutdownTimeout ?? (() => undefined) },
  );
  // A session thread that died while the consumers were being started: drain now.
  if (deaths.length > 0) void shutdown.run('session thread died');

  return {
    id: workerId,
    metricsUrl: `http://${options.metricsHost}:${port}`,
    models,
    close: (reason = 'closed') => shutdown!.run(reason),
  };
}

function boundPort(server: http.Server, asked: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : asked;
}
