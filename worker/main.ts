/**
 * A worker process pinned to one device:
 *   node dist/worker/main.js --device cpu --models text-direction,resnet50
 * Loads each model's session on the device, consumes the models' queues with batching, serves
 * /metrics and /healthz on METRICS_PORT (9464 + WORKER_INDEX), heartbeats into the worker
 * registry, and on SIGTERM stops taking jobs, finishes the batch in flight and exits 0.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import sharp from 'sharp';
import { loadConfig, workerMetricsPort, type Config } from '../shared/config.js';
import { createLogger, logOptions, type Logger } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import { createRegistry, registerQueueDepth, serveMetrics } from '../shared/metrics.js';
import { sideKeyTtlS } from '../shared/jobs/retention.js';
import { createRedis } from '../shared/redis/connection.js';
import { WEBHOOK_QUEUE, modelQueueName } from '../shared/redis/keys.js';
import { webhookJobOptions, type WebhookJobData } from '../shared/webhooks/events.js';
import { publishHeartbeat, removeWorker, type WorkerInfo } from '../shared/worker-registry.js';
import { deviceName, parseDevice, type Device } from './backend/device.js';
import { createWorkerMetrics } from './metrics.js';
import { ModelRunner } from './model-runner.js';
import { SessionPool } from './backend/session-pool.js';
import { QueueConsumer } from './queue-consumer.js';
import { BulkConsumer } from './bulk-consumer.js';
import { ItemIntake } from './item-intake.js';
import { AdmissionGate } from './admission-gate.js';
import { batchLiveTtlS } from '../shared/jobs/retention.js';
import { bullTelemetry, startTracing, stopTracing } from '../shared/tracing.js';

const VERSION = '0.1.0';

async function loadRunners(
  config: Config,
  device: Device,
  models: string,
  log: Logger,
  metrics: ReturnType<typeof createWorkerMetrics>,
  onSessionDeath: (err: Error) => void,
): Promise<ModelRunner[]> {
  const repository = loadModelRepository(config);
  const wanted = models === 'all' ? [...repository.keys()] : models.split(',').map((m) => m.trim());
  for (const name of wanted) {
    if (!repository.has(name)) throw new Error(`unknown model "${name}" (known: ${[...repository.keys()].join(', ')})`);
  }
  const tuning = {
    intraOpThreads: config.MODELHUB_INTRA_OP_THREADS,
    interOpThreads: config.MODELHUB_INTER_OP_THREADS,
    spinning: config.MODELHUB_ORT_SPINNING === 'on',
    cudaMemLimit: config.MODELHUB_CUDA_MEM_LIMIT,
  };
  const runners: ModelRunner[] = [];
  // One session per distinct model file: the three DBNet text models load one, not three.
  const sessions = new SessionPool(onSessionDeath);
  for (const name of wanted) {
    const entry = repository.get(name)!;
    if (!entry.modelPath) {
      // "all" serves what is installed; a model asked for by name must load.
      if (models === 'all') {
        log.warn({ model: name, problem: entry.problem }, 'model unavailable; not served');
        continue;
      }
      throw new Error(`model "${name}" is unavailable: ${entry.problem}`);
    }
    const runner = await ModelRunner.load(entry, device, config, metrics, { tuning, onSessionDeath, sessions });
    runners.push(runner);
    const { batchLimit, weights } = runner;
    log.info(
      {
        model: name,
        device: deviceName(device),
        weights: weights.kind,
        verification: weights.verification,
        file: entry.modelPath,
        sha256: weights.sha256,
        max_batch_size: runner.batching.max_batch_size,
      },
      'model loaded',
    );
    if (batchLimit) {
      log.warn(
        {
          model: name,
          tensor: batchLimit.tensor,
          max_batch_size: batchLimit.size,
          manifest_max_batch_size: entry.manifest.batching.max_batch_size,
        },
        `the model file fixes the batch dimension of "${batchLimit.tensor}" at ${batchLimit.size}: batches capped at ${batchLimit.size}`,
      );
    }
    if (weights.expected_sha256) {
      log.warn(
        { model: name, file: entry.modelPath, sha256: weights.sha256, expected_sha256: weights.expected_sha256 },
        'the model file differs from the checksum its manifest gives',
      );
    }
  }
  if (runners.length === 0) throw new Error('no model could be loaded; nothing to serve');
  return runners;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: config.MODELHUB_DEVICE },
      models: { type: 'string', default: config.MODELHUB_MODELS },
    },
  });
  // Before any queue or worker is made: BullMQ takes its telemetry when they are built.
  await startTracing('worker');
  const log = createLogger('worker', logOptions(config));
  // The thread budget: libvips threads per image (jobs already run side by side on libuv's
  // pool, sized by UV_THREADPOOL_SIZE: the fleet launcher sets it to the cores available).
  sharp.concurrency(config.MODELHUB_SHARP_THREADS || os.availableParallelism());
  const device = parseDevice(values.device!);
  const registry = createRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  // A dead session thread cannot be trusted again: drain and exit non-zero; the fleet launcher
  // (or the orchestrator) restarts the worker and the failed jobs are retried.
  let exitCode = 0;
  let shutdown: (reason: string) => Promise<void> = async () => {
    process.exit(1);
  };
  const runners = await loadRunners(config, device, values.models!, log, metrics, (err) => {
    log.fatal({ err: err.message }, 'an onnxruntime session thread died; restarting the worker');
    exitCode = 1;
    void shutdown('session thread died');
  });

  const workerId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const connection = createRedis(config, { blocking: true });
  connection.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
    connection,
    prefix: config.MODELHUB_PREFIX,
    defaultJobOptions: webhookJobOptions(config),
    // Tracing on: a job's webhook events carry its trace context to the delivery worker.
    telemetry: bullTelemetry(),
  });
  webhooks.on('error', (err) => log.warn({ err: err.message }, 'webhook queue error'));
  // One intake per model: its interactive jobs (entries of one item) and its batch chunks (entries
  // of up to BATCH_CHUNK_SIZE items) both feed the model's batcher through it.
  // One gate for the worker's very large images, whichever model they are for.
  const heavyInFlight = config.HEAVY_ITEMS_IN_FLIGHT || Math.max(1, Math.floor(os.availableParallelism() / 2));
  const heavy =
    config.HEAVY_IMAGE_PIXELS > 0
      ? { gate: new AdmissionGate(heavyInFlight), minPixels: config.HEAVY_IMAGE_PIXELS }
      : undefined;
  const intakes = runners.map(
    (runner) =>
      new ItemIntake(runner, {
        bulkInFlight: config.BATCH_ITEMS_IN_FLIGHT || 2 * runner.entry.manifest.batching.max_batch_size,
        heavy,
      }),
  );
  // What both lanes' BullMQ workers share: where, who, and how jobs are locked and recovered.
  const lane = {
    prefix: config.MODELHUB_PREFIX,
    connection,
    workerId,
    webhooks,
    lockDurationMs: config.MODELHUB_LOCK_MS,
    stalledIntervalMs: config.MODELHUB_STALLED_INTERVAL_MS,
    maxStalledCount: config.MODELHUB_MAX_STALLED,
  };
  const consumers = intakes.map(
    (intake) => new QueueConsumer(intake, metrics, log, { ...lane, claimTtlS: sideKeyTtlS(config), retention: config }),
  );

  const bulkConsumers = intakes.map(
    (intake) =>
      new BulkConsumer(intake, metrics, log, {
        ...lane,
        chunksAtOnce: config.BATCH_WORKER_CHUNKS,
        liveTtlS: batchLiveTtlS(config),
        retentionS: config.JOB_RETENTION_S,
      }),
  );

  // Queue depth of the models this worker serves, read from Redis when Prometheus scrapes.
  const depthQueues = runners.map(
    (r) =>
      [
        r.entry.manifest.name,
        new Queue(modelQueueName(r.entry.manifest.name), { connection, prefix: config.MODELHUB_PREFIX }),
      ] as [string, Queue],
  );
  registerQueueDepth(registry, () => depthQueues);

  const port = workerMetricsPort(config);
  let stopping = false;
  const server = await serveMetrics(registry, port, config.HOST, () => ({
    status: stopping ? 503 : 200,
    body: {
      status: stopping ? 'stopping' : 'ok',
      worker: workerId,
      device: deviceName(device),
      models: runners.map((r) => r.entry.manifest.name),
      // Thread ids for per-thread CPU accounting from /proc (npm run bench reads them).
      threads: {
        pid: process.pid,
        sessions: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.sessionThreads])),
      },
    },
  }));

  const startedAt = new Date().toISOString();
  const info = (): WorkerInfo => ({
    id: workerId,
    device: deviceName(device),
    models: runners.map((r) => r.entry.manifest.name),
    pid: process.pid,
    host: os.hostname(),
    version: VERSION,
    started_at: startedAt,
    heartbeat_at: Date.now(),
    heartbeat_ms: config.MODELHUB_HEARTBEAT_MS,
    batching: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.batching])),
    weights: Object.fromEntries(
      runners.map((r) => [
        r.entry.manifest.name,
        { file: r.weights.file, sha256: r.weights.sha256, kind: r.weights.kind, verification: r.weights.verification },
      ]),
    ),
    load: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.inFlight])),
  });
  const beat = () =>
    publishHeartbeat(connection, config.MODELHUB_PREFIX, info()).catch((err) =>
      log.warn({ err: err.message }, 'heartbeat failed'),
    );
  void beat();
  const heartbeat = setInterval(() => void beat(), config.MODELHUB_HEARTBEAT_MS);

  for (const c of consumers) c.start();
  for (const c of bulkConsumers) c.start();
  metrics.up.set({ device: deviceName(device) }, 1);
  log.info({ worker: workerId, device: deviceName(device), port, models: info().models }, 'worker ready');

  shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down: no new jobs, finishing the batch in flight');
    metrics.up.set({ device: deviceName(device) }, 0);
    clearInterval(heartbeat);
    const force = setTimeout(() => {
      log.error(
        { timeoutMs: config.SHUTDOWN_TIMEOUT_MS },
        'shutdown took too long; exiting (unfinished jobs are recovered by other workers)',
      );
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    // worker.close() stops fetching, then waits for the active jobs (the batch in flight) and
    // stores their results.
    await Promise.all([...consumers, ...bulkConsumers].map((c) => c.close()));
    await Promise.all(runners.map((r) => r.close()));
    await removeWorker(connection, config.MODELHUB_PREFIX, workerId).catch(() => undefined);
    await webhooks.close().catch(() => undefined);
    await Promise.all(depthQueues.map(([, q]) => q.close().catch(() => undefined)));
    await connection.quit().catch(() => undefined);
    server.close();
    log.info('worker stopped');
    await stopTracing();
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  createLogger('worker').fatal({ err }, `worker failed to start: ${(err as Error).message}`);
  process.exit(1);
});
