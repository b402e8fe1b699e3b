/** Operations: liveness, readiness (Redis accepts writes), live workers. Metrics: API_METRICS_PORT (server.ts). */
import { Router, type Request, type Response } from 'express';
import { SpecError } from '../../shared/errors.js';
import { readinessProbeKey } from '../../shared/redis/keys.js';
import { listLiveWorkers } from '../../shared/worker-registry.js';
import type { ApiContext } from '../context.js';

export function opsRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    try {
      // A write, not a PING: a Redis at maxmemory (noeviction) answers PING but refuses submits.
      await withTimeout(
        ctx.redis.set(readinessProbeKey(ctx.config.MODELHUB_PREFIX), String(Date.now()), 'PX', 10_000),
        1000,
      );
      res.json({ status: 'ready' });
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'not ready: redis does not accept writes');
      res.status(503).json({ status: 'not ready', reason: 'redis does not accept writes' });
    }
  });

  return router;
}

export function workerRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/v1/workers', async (req: Request, res: Response) => {
    const workers = await listLiveWorkers(ctx.redis, ctx.config.MODELHUB_PREFIX).catch((err: Error) => {
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
  });
  return router;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);
}
