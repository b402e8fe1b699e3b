/** The Express app: router → validation → queue. Every error leaves as a spec error object. */
import express, { type NextFunction, type Request, type Response } from 'express';
import { SpecError, asSpecError } from '../shared/errors.js';
import { apiKeyAuth, parseApiKeys } from './auth.js';
import type { ApiContext } from './context.js';
import { buildOpenApi } from './openapi.js';
import { ParseBudget } from './parse-budget.js';
import { tenantRateLimit } from './rate-limits.js';
import { jsonBody, jsonBodyOptions } from './json-body.js';
import { checkBodyMedia } from './body-meter.js';
import { limitsOf } from '../shared/tenant-limits.js';
import { consoleRoutes } from './routes/console.js';
import { allRoutes, routeTable } from './routes/index.js';
import { mountRoutes } from './route-table.js';
import { RouteLabels } from './route-labels.js';
import { RefusalCounter } from './refusals.js';
import { QUEUE_BOARD_PATH } from './queue-board.js';
import { requestSpans } from './request-spans.js';
import { tracingOn } from '../shared/tracing.js';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

export function createApp(ctx: ApiContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const { intake, tenancy } = ctx.options;
  const bodyLimit = intake.bodyLimitBytes;
  // Every keyed request counts, batch uploads and batch polls included.
  const rateLimit = tenantRateLimit({
    requestsPerS: tenancy.rateRps,
    bytesPerS: tenancy.rateBytesPerS,
    bodyLimit,
    ratesOf: (tenant) => {
      const own = limitsOf(tenancy, tenant);
      return { requestsPerS: own.rateRps, bytesPerS: own.rateBytesPerS };
    },
  });
  // One table registers the routes, writes /openapi.json and names the metrics' route labels.
  const table = routeTable(ctx, rateLimit.state, () => openapi);
  const routes = allRoutes(table);
  const openapi = buildOpenApi(routes, {
    version: ctx.version,
    models: new Map([...ctx.models].map(([name, entry]) => [name, entry.manifest.task])),
  });
  // Labels from the table's routes, so requests refused before routing are labelled too.
  const routeLabels = new RouteLabels(routes);
  const refusals = new RefusalCounter(ctx.metrics.jobsRejected, routeLabels, (name) => ctx.models.has(name));
  // First: a request's span covers everything that handles it (only when tracing is on).
  if (tracingOn()) app.use(requestSpans((req, res) => routeLabels.labelOf(req, res.locals.routeNotFound === true)));

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.on('finish', () => {
      const route = routeLabels.labelOf(req, res.locals.routeNotFound === true);
      ctx.metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      ctx.metrics.requestSeconds.observe({ method: req.method, route }, (performance.now() - started) / 1000);
    });
    req.tenant = null;
    req.admin = false;
    if (ctx.jobs.closing) res.setHeader('connection', 'close');
    next();
  });

  app.use(mountRoutes(table.open));
  // Before the /v1 key check and the tenants' rate limits: the board checks admin keys itself.
  app.use(QUEUE_BOARD_PATH, ctx.board.router);
  app.use(consoleRoutes());
  app.use('/v1', apiKeyAuth(parseApiKeys(ctx.options.apiKeys)));
  app.use(rateLimit);
  // Every body, batch uploads included: uncompressed UTF-8 only (415), and held to the parse budget
  // for the bytes actually received.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(checkBodyMedia(req) ?? undefined);
  });
  app.use(new ParseBudget(intake.parsingBytes).middleware(bodyLimit));
  // Before the JSON parser: a batch upload is read as a stream under its own line, byte and item
  // caps (BATCH_MAX_*).
  app.use(mountRoutes(table.batches));
  // Depth and value count are checked on the raw bytes first: parsing is what costs memory.
  app.use(jsonBody(jsonBodyOptions(ctx)));
  app.use(mountRoutes(table.api));

  app.use((req: Request, res: Response) => {
    res.locals.routeNotFound = true;
    throw new SpecError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.path}`);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parserError = err as BodyParserError;
    let spec: SpecError;
    if (parserError.type === 'entity.too.large') {
      spec = new SpecError('BODY_TOO_LARGE', `request body is larger than ${bodyLimit} bytes`);
    } else if (
      parserError.type === 'entity.parse.failed' ||
      parserError.type === 'encoding.unsupported' ||
      parserError.type === 'charset.unsupported'
    ) {
      spec = new SpecError('BAD_JSON', `request body is not valid JSON: ${parserError.message}`);
    } else if (
      parserError.status &&
      parserError.status >= 400 &&
      parserError.status < 500 &&
      !(err instanceof SpecError)
    ) {
      spec = new SpecError('INVALID_INPUT', parserError.message);
    } else {
      spec = asSpecError(err);
    }
    refusals.count(req, spec);
    if (spec.httpStatus >= 500 && spec.kind !== 'STORE_UNAVAILABLE' && spec.kind !== 'WAIT_TIMEOUT') {
      ctx.log.error({ err, path: req.path }, 'request failed');
    }
    for (const [k, v] of Object.entries(spec.headers)) res.setHeader(k, v);
    res.status(spec.httpStatus).json(spec.toBody());
  });
  return app;
}
