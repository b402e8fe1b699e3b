/**
 * The `route` label of the API's request metrics, for every request: the Express route that
 * answered it, or, for a request refused at the door before any route ran (401 without a key,
 * 429 past a rate, 503 past the parse budget, 400/413 from the body parser), the route it was
 * addressed to. Those refusals used to be counted as `route="unmatched"`, so a dashboard could
 * not tell a flood of 429s on job submits from scanners probing unknown paths.
 * The routes are the route table's entries (api/route-table.ts, which also registers them and
 * writes the OpenAPI document), written the way Express writes them (`/v1/jobs/:id`), which is
 * what a matched route's label says too.
 */
import type { Request } from 'express';

/** The label of requests that no route of the API serves (unknown paths, wrong methods). */
export const UNMATCHED = 'unmatched';

/** Everything under the queue board's mount point shares one label (its own routes are bull-board's). */
export const QUEUE_BOARD_PATH = '/admin/queues';

export interface RouteMatch {
  /** The route as Express writes it, e.g. `/v1/models/:model/jobs`. */
  route: string;
  params: Record<string, string>;
}

interface CompiledRoute {
  method: string;
  route: string;
  pattern: RegExp;
  names: string[];
}

export class RouteLabels {
  private readonly routes: CompiledRoute[];

  /** `routes`: method and Express path (`/v1/jobs/:id`) of each route. */
  constructor(routes: readonly { method: string; path: string }[]) {
    this.routes = routes.map(({ method, path }) => {
      const names = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]);
      const source = path
        .split(/:\w+/)
        .map((literal) => literal.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
        .join('([^/]+)');
      return { method: method.toUpperCase(), route: path, pattern: new RegExp(`^${source}/?$`), names };
    });
  }

  /** The route a method and path are addressed to, with its parameters (decoded), or null. */
  match(method: string, path: string): RouteMatch | null {
    const m = method === 'HEAD' ? 'GET' : method;
    for (const r of this.routes) {
      if (r.method !== m) continue;
      const found = r.pattern.exec(path);
      if (!found) continue;
      const params: Record<string, string> = {};
      r.names.forEach((name, i) => {
        params[name] = safeDecode(found[i + 1]);
      });
      return { route: r.route, params };
    }
    return null;
  }

  /**
   * The label of a finished request. `routeNotFound`: the request went through every router
   * and none served it (its 404 is the API's own), so it is unmatched whatever its path.
   */
  labelOf(req: Request, routeNotFound: boolean): string {
    const path = pathOf(req);
    // The board's own routes (bull-board's) would each be a label, relative to its mount point.
    if (!routeNotFound && (path === QUEUE_BOARD_PATH || path.startsWith(`${QUEUE_BOARD_PATH}/`)))
      return QUEUE_BOARD_PATH;
    if (req.route?.path) return String(req.route.path);
    if (routeNotFound) return UNMATCHED;
    return this.match(req.method, path)?.route ?? UNMATCHED;
  }
}

/** The request's path as the client sent it (routers rewrite `req.path` while they dispatch). */
export function pathOf(req: Request): string {
  return (req.originalUrl || req.url).split('?')[0];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
