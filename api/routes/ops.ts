/** Operations: liveness, readiness (Redis accepts writes), live workers. Metrics: MODELHUB_API_METRICS_PORT (server.ts). */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { SpecError } from '../../shared/errors.js';
import { readinessProbeKey } from '../../shared/redis/keys.js';
import { listLiveWorkers } from '../../shared/worker-registry.js';
import type { ApiContext } from '../context.js';
import type { RouteDef } from '../route-table.js';
import { WorkersSchema } from '../schemas.js';

/** Key-less operations endpoints: liveness and readiness. */
export function opsRoutes(ctx: ApiContext): RouteDef[] {
  const ready = async (_req: Request, res: Response) => {
    try {
      // A write, not a PING: a Redis at maxmemory (noeviction) answers PING but refuses submits.
      await withTimeout(ctx.redis.set(readinessProbeKey(ctx.options.prefix), String(Date.now()), 'PX', 10_000), 1000);
      res.json({ status: 'ready' });
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'not ready: redis does not accept writes');
      res.status(503).json({ status: 'not ready', reason: 'redis does not accept writes' });
    }
  };

  // The operations endpoints answer no client error: they take no input and no key.
  return [
    {
      method: 'get',
      path: '/healthz',
      operationId: 'health',
      summary: 'Liveness',
      open: true,
      replies: {
        '200': { description: 'Alive', content: { 'application/json': z.object({ status: z.literal('ok') }) } },
      },
      handlers: [(_req, res) => void res.json({ status: 'ok' })],
    },
    {
      method: 'get',
      path: '/readyz',
      operationId: 'ready',
      summary: 'Readiness (Redis accepts writes)',
      open: true,
      replies: {
        '200': { description: 'Ready', content: { 'application/json': z.object({ status: z.literal('ready') }) } },
        '503': {
          description: 'Not ready',
          content: { 'application/json': z.object({ status: z.literal('not ready'), reason: z.string() }) },
        },
      },
      handlers: [ready],
    },
  ];
}

export function workerRoutes(ctx: ApiContext): RouteDef[] {
  const listWorkers = async (req: Request, res: Response) => {
    const workers = await listLiveWorkers(ctx.redis, ctx.options.prefix).catch((err: Error) => {
      ctx.log.warn({ err: err.message }, 'worker registry read failed');
      throw new SpecError('STORE_UNAVAILABLE', 'the worker registry is unavailable; try again shortly', {
        'Retry-After': '2',
      });
    });
    if (req.admin) {
      res.json({ workers, count: workers.length });
      return;
    }
    // Tenants share the fleet: they see how much of it serves which model, not its hosts or pids.
    const byModel: Record<string, number> = {};
    const byDevice: Record<string, number> = {};
    for (const w of workers) {
      byDevice[w.device.split(':')[0]] = (byDevice[w.device.split(':')[0]] ?? 0) + 1;
      for (const m of w.models) byModel[m] = (byModel[m] ?? 0) + 1;
    }
    res.json({ count: workers.length, by_device: byDevice, by_model: byModel });
  };
  return [
    {
      method: 'get',
      path: '/v1/workers',
      operationId: 'workers',
      summary: 'Live workers',
      replies: { '200': { description: 'Workers', content: { 'application/json': WorkersSchema } } },
      errors: ['STORE_UNAVAILABLE'],
      handlers: [listWorkers],
    },
  ];
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);
}

/** The document itself, and /metrics, which is described here but served on the metrics listener (server.ts). */
export function documentRoutes(document: () => Record<string, unknown>): RouteDef[] {
  return [
    {
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      summary:
        "Prometheus metrics: served on the API's metrics listener (MODELHUB_API_METRICS_PORT, loopback by default), not on the public port",
      open: true,
      // Not on this document's server: the public port answers /metrics with 404.
      servers: [
        {
          url: 'http://{host}:{port}',
          description:
            "The API's metrics listener (MODELHUB_API_METRICS_HOST:MODELHUB_API_METRICS_PORT), not the public port",
          variables: {
            host: {
              default: '127.0.0.1',
              description: 'MODELHUB_API_METRICS_HOST (loopback unless bound for the scraper)',
            },
            port: { default: '9463', description: 'MODELHUB_API_METRICS_PORT' },
          },
        },
      ],
      replies: { '200': { description: 'Text format', content: { 'text/plain': { type: 'string' } } } },
      handlers: [],
    },
    {
      method: 'get',
      path: '/openapi.json',
      operationId: 'openapi',
      summary: 'This document',
      open: true,
      replies: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { type: 'object' } } } },
      handlers: [(_req, res) => void res.json(document())],
    },
  ];
}
