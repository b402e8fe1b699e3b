/**
 * GET /v1/usage: what the calling tenant holds against its quotas, per model, read from the live
 * counters the 429s are decided on (not recomputed from the jobs), so a drift would show here.
 * Admins may ask for any tenant (`?tenant=`).
 */
import type { Request, Response } from 'express';
import { SpecError } from '../../shared/errors.js';
import { limitsOf } from '../../shared/tenant-limits.js';
import type { ApiContext } from '../context.js';
import { storeCall } from '../store-call.js';
import type { TenantRateState } from '../rate-limits.js';
import { UsageSchema } from '../schemas.js';
import type { RouteDef } from '../route-table.js';
import type { z } from 'zod';

export type UsageView = z.output<typeof UsageSchema>;

export function usageRoutes(ctx: ApiContext, rates: TenantRateState): RouteDef[] {
  const { jobs, batches } = ctx;
  const { tenancy } = ctx.options;
  const store = storeCall(ctx.log);

  const usage = async (req: Request, res: Response) => {
    const asked = typeof req.query.tenant === 'string' ? req.query.tenant : undefined;
    if (asked !== undefined && !req.admin && asked !== req.tenant)
      throw new SpecError('FORBIDDEN', "only an admin key may read another tenant's usage");
    const tenant = asked ?? req.tenant;
    const limits = limitsOf(tenancy, tenant);
    const models = await store(() =>
      Promise.all(
        [...jobs.queues.keys()].map(async (model) => {
          const [u, b] = await Promise.all([
            jobs.accounting.usage(model, tenant),
            batches.accounting.usage(model, tenant),
          ]);
          return [model, { ...u, batch: b }] as const;
        }),
      ),
    );
    const view: UsageView = {
      tenant,
      // This API process's buckets (they are per process), after this request took its token.
      ...(tenant === null ? {} : { rates: rates(tenant) }),
      models: Object.fromEntries(
        models.map(([model, u]) => [
          model,
          {
            waiting: { used: u.waiting, limit: tenant === null ? 0 : limits.maxWaiting },
            stored_bytes: { used: u.storedBytes, limit: tenant === null ? 0 : limits.maxStoredBytes },
            batches_in_flight: u.batch.batches,
            batch_items: { used: u.batch.items, limit: tenant === null ? 0 : limits.maxBatchItems },
            batch_stored_bytes: u.batch.storedBytes,
          },
        ]),
      ),
    };
    res.json(view);
  };

  return [
    {
      method: 'get',
      path: '/v1/usage',
      operationId: 'usage',
      summary: "The calling tenant's waiting jobs and stored bytes per model, against its limits",
      parameters: [
        { name: 'tenant', in: 'query', description: 'Another tenant (admin keys only)', schema: { type: 'string' } },
      ],
      replies: { '200': { description: 'Usage', content: { 'application/json': UsageSchema } } },
      errors: ['FORBIDDEN', 'STORE_UNAVAILABLE'],
      handlers: [usage],
    },
  ];
}
