/** Prometheus helpers both processes use: one registry per process, queue gauges read from Redis on scrape. */
import http from 'node:http';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue } from 'bullmq';
import type { RedisClient } from './redis/connection.js';

/**
 * prom-client's default gauges that carry a counter's `_total` suffix: `promtool check metrics`
 * refuses them (a gauge named like a counter misleads `rate()`). Each is the sum of the by-type
 * gauge of the same name without `_total`, which stays: `sum without (type) (…_active_handles)`.
 */
const GAUGES_NAMED_LIKE_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export const PROCESS_METRICS_PREFIX = 'modelhub_process_';

export function createRegistry(component: 'api' | 'worker' | 'webhooks'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(PROCESS_METRICS_PREFIX + name);
  return registry;
}

const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;

async function readDepth(gauge: Gauge, queues: Iterable<[string, Queue]>): Promise<void> {
  await Promise.all(
    [...queues].map(async ([model, queue]) => {
      try {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) gauge.set({ model, state }, counts[state] ?? 0);
      } catch {
        // Redis down: keep the last values rather than fail the whole scrape.
      }
    }),
  );
}

export interface ScrapeReadOptions {
  /**
   * A scrape within this many ms of the last read's start is answered from that read (several
   * scrapers, or a curl beside Prometheus, cost Redis one read per period). Default 0: every
   * scrape reads (scrapes arriving during a read share it).
   */
  maxAgeMs?: number;
  /** A scrape waits this long for a read (Redis slow or away), then answers the last values. Default 2000. */
  timeoutMs?: number;
  /** Clock of `maxAgeMs`, ms (tests). Default performance.now. */
  now?: () => number;
}

/**
 * A read of Redis done for a scrape: concurrent scrapes share one read, a scrape within
 * `maxAgeMs` of the last read takes its values, and a read slower than `timeoutMs` (Redis hung)
 * lets the scrape answer the last values while it finishes. A read that throws fails neither
 * the scrape nor the reads after it.
 */
export class ScrapeRead {
  private inFlight: Promise<void> | null = null;
  private startedAt = -Infinity;
  private readonly maxAgeMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<void>,
    options: ScrapeReadOptions = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? 0;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Resolves once the gauges hold values no older than `maxAgeMs` (or the read timed out); never rejects. */
  fresh(): Promise<void> {
    if (!this.inFlight && this.now() - this.startedAt >= this.maxAgeMs) {
      this.startedAt = this.now();
      this.inFlight = Promise.resolve()
        .then(this.read)
        .catch(() => undefined)
        .finally(() => {
          this.inFlight = null;
        });
    }
    if (!this.inFlight) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.timeoutMs).unref();
    });
    return Promise.race([this.inFlight, timeout]).finally(() => clearTimeout(timer));
  }
}

/**
 * `modelhub_queue_jobs{model,state}`, read from Redis when Prometheus scrapes (see ScrapeRead
 * for how scrapes share reads).
 */
export function registerQueueDepth(
  registry: Registry,
  queues: () => Iterable<[string, Queue]>,
  options: ScrapeReadOptions = {},
): void {
  const gauge: Gauge = new Gauge({
    name: 'modelhub_queue_jobs',
    help: 'Jobs in each model queue by state',
    labelNames: ['model', 'state'],
    registers: [registry],
    collect: () => reads.fresh(),
  });
  const reads = new ScrapeRead(() => readDepth(gauge, queues()), options);
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
 * Read from Redis when Prometheus scrapes, so the value a scrape stores is the queue as it was
 * then (ScrapeRead: how scrapes share reads).
 */
export function registerBacklog(
  registry: Registry,
  redis: RedisClient,
  models: () => Iterable<ModelLanes>,
  options: ScrapeReadOptions = {},
): void {
  type Row = { model: string; lane: string; backlog: number; oldestS: number };
  const reads = new ScrapeRead(async () => publish(await readBacklog(redis, models())), options);
  const backlog = new Gauge({
    name: 'modelhub_queue_backlog',
    help: 'Queue entries not yet started (waiting + prioritized + delayed) by model and lane; a bulk entry is a chunk of a batch',
    labelNames: ['model', 'lane'],
    registers: [registry],
    collect: () => reads.fresh(),
  });
  const oldest = new Gauge({
    name: 'modelhub_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job at the head of each model lane (0 when empty)',
    labelNames: ['model', 'lane'],
    registers: [registry],
    collect: () => reads.fresh(),
  });
  const publish = (rows: Row[]) => {
    for (const r of rows) {
      backlog.set({ model: r.model, lane: r.lane }, r.backlog);
      oldest.set({ model: r.model, lane: r.lane }, r.oldestS);
    }
  };
}

async function readBacklog(
  redis: RedisClient,
  models: Iterable<ModelLanes>,
): Promise<{ model: string; lane: string; backlog: number; oldestS: number }[]> {
  const now = Date.now();
  const lanes = [...models].flatMap(({ model, interactive, bulk }) => [
    { model, lane: 'interactive', queue: interactive },
    { model, lane: 'bulk', queue: bulk },
  ]);
  // Side by side: a scrape waits for one round of reads, not one per lane.
  const rows = await Promise.all(
    lanes.map(async ({ model, lane, queue }) => {
      try {
        const counts = await queue.getJobCounts(...BACKLOG_STATES);
        const backlog = BACKLOG_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
        return { model, lane, backlog, oldestS: (await headAgeMs(queue, redis, now)) / 1000 };
      } catch {
        // Redis down: this lane keeps its last values rather than fail the whole scrape.
        return null;
      }
    }),
  );
  return rows.filter((r) => r !== null);
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
