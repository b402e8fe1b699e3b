/** Prometheus helpers both processes use: one registry per process, queue depth collected on scrape. */
import http from 'node:http';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue } from 'bullmq';

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
export function registerQueueDepth(registry: Registry, queues: () => Iterable<[string, Queue]>, options: { refreshMs?: number } = {}): () => void {
  const gauge: Gauge = new Gauge({
    name: 'modelhub_queue_jobs',
    help: 'Jobs in each model queue by state',
    labelNames: ['model', 'state'],
    registers: [registry],
    ...(options.refreshMs ? {} : { collect: () => readDepth(gauge, queues()) }),
  });
  if (!options.refreshMs) return () => undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    await readDepth(gauge, queues());
    if (!stopped) timer = setTimeout(tick, options.refreshMs).unref();
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
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
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.setHeader('content-type', registry.contentType);
      res.end(await registry.metrics());
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
