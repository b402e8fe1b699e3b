/**
 * Every route of the API, in the groups app.ts mounts at their places in the middleware chain:
 * `open` before the /v1 key check, `batches` before the JSON body parser (an upload is read as a
 * stream), `api` after it. A new file of routes is listed here.
 */
import type { ApiContext } from '../context.js';
import type { TenantRateState } from '../rate-limits.js';
import type { RouteDef } from '../route-table.js';
import { batchRoutes } from './batches.js';
import { catalogRoutes } from './catalog.js';
import { jobRoutes } from './jobs.js';
import { documentRoutes, opsRoutes, workerRoutes } from './ops.js';
import { usageRoutes } from './usage.js';

export interface RouteTable {
  open: RouteDef[];
  batches: RouteDef[];
  api: RouteDef[];
}

export function routeTable(
  ctx: ApiContext,
  rates: TenantRateState,
  document: () => Record<string, unknown>,
): RouteTable {
  return {
    open: [...opsRoutes(ctx), ...documentRoutes(document)],
    batches: batchRoutes(ctx),
    api: [...catalogRoutes(ctx), ...jobRoutes(ctx), ...workerRoutes(ctx), ...usageRoutes(ctx, rates)],
  };
}

/** The table's routes in the document's order. */
export const allRoutes = (t: RouteTable): RouteDef[] => [...t.api, ...t.batches, ...t.open];
