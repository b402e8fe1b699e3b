/** Prometheus helpers both processes use: one registry per process, queue depth collected on scrape. */
import http from 'node:http';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue } from 'bullmq';
import type { RedisClient } from './redis/connection.js';

export function createRegistry(component: 'api' | 'worker' | 'webhooks'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: 'modelhub_process_' });
  return registry;
}

const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;

async function readDepth(gauge: Gauge, queues: Iterable<[string, Queue]>): Promise<void> {
  for (const [model, queue] of queues) {
    try {
      const counts = await queue.getJobCounts(...QUEUE_STATES);
      for (const state of QUEUE_STATES) gauge.set({ model, state }, counts[state] ?? 0);
    } catch {
      // Redis down: keep the last values rather than fail the whole scrape.
    }
  }
}

/**
 * `modelhub_queue_jobs{model,state}`. Without `refreshMs` it is read from Redis when Prometheus
 * scrapes; with it, refreshed in the background so a scrape costs no Redis call (the API: its
 * scrapes must not load Redis). Returns a function that stops the refresh.
 */
export function registerQueueDepth(
  registry: Registry,
  queues: () => Iterable<[string, Queue]>,
  options: { refreshMs?: number } = {},
): () => void {
  const gauge: Gauge = new Gauge({
    name: 'modelhub_queue_jobs',
    help: 'Jobs in each model queue by state',
    labelNames: ['model', 'state'],
    registers: [registry],
    ...(options.refreshMs ? {} : { collect: () => readDepth(gauge, queues()) }),
  });
  if (!options.refreshMs) return () => undefined;
  return refreshEvery(options.refreshMs, () => readDepth(gauge, queues()));
}

/** Runs `refresh` now and then `ms` after each run ends (never overlapping); returns a stop function. */
function refreshEvery(ms: number, refresh: () => Promise<void>): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // A refresh that throws must neither end the chain (the gauge would go stale for good) nor
  // reject where nothing awaits it (an unhandled rejection ends the process).
  const tick = () => {
    refresh()
      .catch(() => undefined)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, ms).unref();
      });
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export interface ModelLanes {
  model: string;
  interactive: Queue;
  bulk: Queue;
}

const BACKLOG_STATES = ['waiting', 'prioritized', 'delayed'] as const;

/**
 * The autoscaling signal, per model and lane (interactive jobs; bulk chunks of a batch):
 * `modelhub_queue_backlog` counts the entries not yet started: waiting + prioritized + delayed.
 * BullMQ keeps a job added with a priority in a sorted set, not in the `wait` list, so a
 * list-length probe (KEDA's Redis scaler) reads 0 while thousands are queued.
 * `modelhub_queue_oldest_waiting_seconds` is the age of the oldest job at the head of the queue
 * (the next one to run from `wait` and from `prioritized`); 0 when none waits.
 */
export function registerBacklog(
  registry: Registry,
  redis: RedisClient,
  models: () => Iterable<ModelLanes>,
  options: { refreshMs: number },
): () => void {
  type Row = { model: string; lane: string; backlog: number; oldestS: number };
  const backlog = new Gauge({
    name: 'modelhub_queue_backlog',
    help: 'Queue entries not yet started (waiting + prioritized + delayed) by model and lane; a bulk entry is a chunk of a batch',
    labelNames: ['model', 'lane'],
    registers: [registry],
  });
  const oldest = new Gauge({
    name: 'modelhub_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job at the head of each model lane (0 when empty)',
    labelNames: ['model', 'lane'],
    registers: [registry],
  });
  const publish = (rows: Row[]) => {
    for (const r of rows) {
      backlog.set({ model: r.model, lane: r.lane }, r.backlog);
      oldest.set({ model: r.model, lane: r.lane }, r.oldestS);
    }
  };
  // Refreshed in the background: a scrape costs no Redis call.
  return refreshEvery(options.refreshMs, async () => publish(await readBacklog(redis, models())));
}

async function readBacklog(
  redis: RedisClient,
  models: Iterable<ModelLanes>,
): Promise<{ model: string; lane: string; backlog: number; oldestS: number }[]> {
  const rows = [];
  const now = Date.now();
  for (const { model, interactive, bulk } of models) {
    for (const [lane, queue] of [
      ['interactive', interactive],
      ['bulk', bulk],
    ] as const) {
      try {
        const counts = await queue.getJobCounts(...BACKLOG_STATES);
        const backlog = BACKLOG_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
        rows.push({ model, lane, backlog, oldestS: (await headAgeMs(queue, redis, now)) / 1000 });
      } catch {
        // Redis down: leave the series out rather than fail the whole scrape.
      }
    }
  }
  return rows;
}

/** Age of the oldest of the two next-to-run jobs (wait list tail, lowest prioritized score). */
async function headAgeMs(queue: Queue, redis: RedisClient, now: number): Promise<number> {
  const [fromWait, fromPrioritized] = await Promise.all([
    redis.lindex(queue.keys.wait, -1),
    redis.zrange(queue.keys.prioritized, 0, 0),
  ]);
  const ids = [fromWait, fromPrioritized[0]].filter((id): id is string => !!id);
  const stamps = await Promise.all(ids.map((id) => redis.hget(queue.toKey(id), 'timestamp')));
  return Math.max(0, ...stamps.map((t) => (t ? now - Number(t) : 0)));
}

/** Shared bucket layouts, seconds. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The small HTTP server of a non-API process: GET /metrics (Prometheus text) and GET /healthz
 * (`health()` gives the status code and JSON body). Resolves once listening.
 */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host: string,
  health: () => { status: number; body: Record<string, unknown> } = () => ({ status: 200, body: { status: 'ok' } }),
): Promise<http.Server> {
  // (The API serves its metrics through this too, on API_METRICS_PORT, never on its public port.)
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      // A collector that throws fails this scrape (500), never the process.
      registry.metrics().then(
        (text) => {
          res.setHeader('content-type', registry.contentType);
          res.end(text);
        },
        (err: Error) => {
          res.statusCode = 500;
          res.setHeader('content-type', 'text/plain');
          res.end(`metrics collection failed: ${err.message}\n`);
        },
      );
    } else if (req.url === '/healthz') {
      const h = health();
      res.statusCode = h.status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(h.body));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
