/** Operations: liveness, readiness (Redis answers), Prometheus metrics, live workers. */
import { Router, type Request, type Response } from 'express';
import { SpecError } from '../../shared/errors.js';
import { listLiveWorkers } from '../../shared/worker-registry.js';
import type { ApiContext } from '../context.js';

export function opsRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    try {
      await withTimeout(ctx.redis.ping(), 1000);
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'not ready', reason: `redis: ${(err as Error).message}` });
    }
  });

  router.get('/metrics', async (_req: Request, res: Response) => {
    res.type(ctx.registry.contentType).send(await ctx.registry.metrics());
  });

  return router;
}

export function workerRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/v1/workers', async (_req: Request, res: Response) => {
    const workers = await listLiveWorkers(ctx.redis, ctx.config.MODELHUB_PREFIX).catch((err: Error) => {
      throw new SpecError('STORE_UNAVAILABLE', `the worker registry is unavailable: ${err.message}`);
    });
    res.json({ workers });
  });
  return router;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);
}
