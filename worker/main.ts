/**
 * A worker process pinned to one device:
 *   tsx worker/main.ts --device cpu --models text-direction,resnet50
 * Loads each model's session on the device, consumes the models' queues with batching, serves
 * /metrics and /healthz on METRICS_PORT (9464 + WORKER_INDEX), and shuts down gracefully on SIGTERM.
 */
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { loadConfig, workerMetricsPort } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import { createRegistry } from '../shared/metrics.js';
import { Queue } from 'bullmq';
import { WEBHOOK_QUEUE, createRedis } from '../shared/queue.js';
import { webhookJobOptions, type WebhookJobData } from '../shared/webhooks/events.js';
import { HEARTBEAT_MS, publishHeartbeat, removeWorker, type WorkerInfo } from '../shared/worker-registry.js';
import { deviceName, parseDevice } from './backend/device.js';
import { createWorkerMetrics } from './metrics.js';
import { ModelRunner } from './model-runner.js';
import { QueueConsumer } from './queue-consumer.js';

const VERSION = '0.1.0';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: process.env.MODELHUB_DEVICE ?? 'cpu' },
      models: { type: 'string', default: process.env.MODELHUB_MODELS ?? 'all' },
    },
  });
  const config = loadConfig();
  const log = createLogger('worker', config.LOG_LEVEL);
  const device = parseDevice(values.device!);
  const repository = loadModelRepository(config);
  const wanted = values.models === 'all' ? [...repository.keys()] : values.models!.split(',').map((m) => m.trim());
  for (const name of wanted) {
    if (!repository.has(name)) throw new Error(`unknown model "${name}" (known: ${[...repository.keys()].join(', ')})`);
  }

  const registry = createRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  const workerId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const connection = createRedis(config, { blocking: true });
  const webhooks = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection, prefix: config.MODELHUB_PREFIX, defaultJobOptions: webhookJobOptions(config) });
  webhooks.on('error', (err) => log.warn({ err: err.message }, 'webhook queue error'));
  const consumers: QueueConsumer[] = [];
  const runners: ModelRunner[] = [];

  for (const name of wanted) {
    const entry = repository.get(name)!;
    if (!entry.modelPath) {
      if (values.models === 'all') {
        log.warn({ model: name, problem: entry.problem }, 'model unavailable; not served');
        continue;
      }
      throw new Error(`model "${name}" is unavailable: ${entry.problem}`);
    }
    const runner = await ModelRunner.load(entry, device, config, metrics);
    runners.push(runner);
    consumers.push(new QueueConsumer(runner, metrics, log, { prefix: config.MODELHUB_PREFIX, connection, workerId, webhooks }));
    log.info({ model: name, device: deviceName(device), weights: entry.weights, file: entry.modelPath }, 'model loaded');
  }
  if (consumers.length === 0) throw new Error('no model could be loaded; nothing to serve');

  const port = workerMetricsPort(config);
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.setHeader('content-type', registry.contentType);
      res.end(await registry.metrics());
    } else if (req.url === '/healthz') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'ok', worker: workerId, device: deviceName(device), models: runners.map((r) => r.entry.manifest.name) }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, config.HOST, resolve));

  const info = (): WorkerInfo => ({
    id: workerId,
    device: deviceName(device),
    models: runners.map((r) => r.entry.manifest.name),
    pid: process.pid,
    host: os.hostname(),
    version: VERSION,
    started_at: startedAt,
    heartbeat_at: Date.now(),
    batching: Object.fromEntries(runners.map((r) => [r.entry.manifest.name, r.entry.manifest.batching])),
    load: Object.fromEntries(consumers.map((c, i) => [runners[i].entry.manifest.name, c.worker.concurrency])),
  });
  const startedAt = new Date().toISOString();
  const beat = () => publishHeartbeat(connection, config.MODELHUB_PREFIX, info()).catch((err) => log.warn({ err }, 'heartbeat failed'));
  await beat();
  const heartbeat = setInterval(beat, HEARTBEAT_MS);

  for (const c of consumers) c.start();
  metrics.up.set({ device: deviceName(device) }, 1);
  log.info({ worker: workerId, device: deviceName(device), port, models: info().models }, 'worker ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing jobs in flight');
    metrics.up.set({ device: deviceName(device) }, 0);
    clearInterval(heartbeat);
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 30_000));
    force.unref();
    // worker.close() stops fetching and waits for the active jobs, i.e. the batch in flight.
    await Promise.all(consumers.map((c) => c.close()));
    await Promise.all(runners.map((r) => r.close()));
    await removeWorker(connection, config.MODELHUB_PREFIX, workerId).catch(() => undefined);
    await webhooks.close().catch(() => undefined);
    await connection.quit().catch(() => undefined);
    server.close();
    log.info('worker stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  createLogger('worker').fatal({ err }, `worker failed to start: ${(err as Error).message}`);
  process.exit(1);
});
