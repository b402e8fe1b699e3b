/** Builds and starts the API: configuration, model repository, queues, HTTP server. */
import { UPLOAD_TIMEOUT_MS } from '../shared/batches/accounting.js';
import { sideKeyTtlS } from '../shared/jobs/retention.js';
import { Reconciler } from './reconciler.js';
import type { Server } from 'node:http';
import { ConfigError, loadConfig, type Config } from '../shared/config.js';
import { createLogger, logOptions } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import { createRegistry, registerBacklog, registerQueueDepth, serveMetrics } from '../shared/metrics.js';
import { createRedis } from '../shared/redis/connection.js';
import { WebhookDelivery } from '../webhooks/delivery.js';
import { isLoopback, parseApiKeys } from './auth.js';
import { createApp } from './app.js';
import type { ApiContext } from './context.js';
import { BatchService } from './batch-service.js';
import { validateInput } from './input-validation.js';
import { JobService, type JobServiceHooks } from './job-service.js';
import { PredictService } from './predict-service.js';
import { OffloopPool, siblingModule } from '../shared/offloop/pool.js';
import { createApiMetrics } from './metrics.js';
import { QueueBoard } from './queue-board.js';
import { startTracing } from '../shared/tracing.js';
import { VERSION } from '../shared/version.js';
import { apiOptions } from '../shared/options/api.js';

export interface RunningApi {
  server: Server;
  /** The metrics listener (API_METRICS_HOST:API_METRICS_PORT): GET /metrics. */
  metricsUrl: string;
  ctx: ApiContext;
  url: string;
  /** Settles accounting records against their jobs (started unless MODELHUB_RECONCILE_PERIOD_MS=0). */
  reconciler: Reconciler;
  close(): Promise<void>;
}

export interface StartApiOptions {
  /** Points where a test forces an interleaving (never set in production). */
  jobHooks?: JobServiceHooks;
}

export async function startApi(config: Config = loadConfig(), start: StartApiOptions = {}): Promise<RunningApi> {
  const options = apiOptions(config);
  // Before any queue is made: BullMQ takes its telemetry when a Queue or Worker is built.
  await startTracing('api');
  const log = createLogger('api', logOptions(config));
  const keys = parseApiKeys(options.apiKeys);
  if (keys.length === 0 && !isLoopback(options.host) && !options.allowAnonymous) {
    throw new ConfigError(
      `MODELHUB_API_KEYS is not set and HOST=${options.host} is not loopback: set API keys, or MODELHUB_ALLOW_ANONYMOUS=true for an open hub`,
    );
  }
  if (keys.length === 0)
    log.warn({ host: options.host }, 'MODELHUB_API_KEYS is not set: the API is open to anyone who can reach it');
  else log.info({ tenants: [...new Set(keys.map((k) => k.tenant))].length }, 'API keys required');
  const models = loadModelRepository(config);
  for (const entry of models.values()) {
    if (!entry.modelPath)
      log.warn({ model: entry.manifest.name, problem: entry.problem }, 'model listed as unavailable');
  }
  const redis = createRedis(config, { blocking: false });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  // Commands fail fast while disconnected (no offline queue), so wait for the first connection;
  // if Redis is down at start the API still starts, answering 503 until it is back.
  const connected = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!connected) log.warn({ url: config.REDIS_URL }, 'redis is not reachable yet; answering 503 until it is');
  const registry = createRegistry('api');
  // Reads (GET, polls) on a connection of their own: a large job read never delays a submit.
  const reader = createRedis(config, { blocking: false });
  reader.on('error', (err) => log.warn({ err: err.message }, 'redis error (reads)'));
  if (connected) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      reader.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  const { webhooks, intake } = options;
  const jobs = new JobService(models, redis, config, log, reader, start.jobHooks);
  const batches = new BatchService(jobs, redis, config, log, (model, value) =>
    validateInput(jobs.model(model), value, intake),
  );
  // Read from Redis when scraped; scrapes within API_METRICS_REFRESH_MS of a read share it.
  const scrapeReads = { maxAgeMs: options.metricsRefreshMs };
  registerQueueDepth(registry, () => jobs.readQueueEntries(), scrapeReads);
  registerBacklog(
    registry,
    reader,
    () =>
      [...jobs.queues.keys()].map((model) => ({
        model,
        interactive: jobs.queues.get(model)!,
        bulk: batches.queues.get(model)!,
      })),
    scrapeReads,
  );
  const metrics = createApiMetrics(registry);
  const predict = new PredictService(jobs, redis, reader, config, log, metrics.predictEntryItems);
  const reconciler = new Reconciler(reader, new Map(jobs.readQueueEntries()), jobs.webhooks, log, {
    prefix: options.prefix,
    accounting: { ttlS: sideKeyTtlS(config), retention: config },
    periodMs: options.reconcilePeriodMs,
    entries: predict.entries.queues,
  });
  if (options.reconcilePeriodMs > 0) reconciler.start();
  // Subscribed before the first call, whose notice would otherwise race the subscription.
  jobs.waits.listen();
  const ctx: ApiContext = {
    version: VERSION,
    options,
    log,
    models,
    redis,
    jobs,
    batches,
    predict,
    registry,
    metrics,
    offloop: new OffloopPool({
      module: siblingModule(import.meta.url, 'body-parse'),
      maxThreads: intake.offloopThreads || undefined,
    }),
    board: new QueueBoard({
      connection: reader,
      prefix: options.prefix,
      models: [...models.keys()],
      keys,
      loopbackOnly: isLoopback(options.host),
    }),
  };
  let delivery: WebhookDelivery | null = null;
  const deliveryConnection = webhooks.secret && webhooks.deliverInApi ? createRedis(config, { blocking: true }) : null;
  if (deliveryConnection) {
    delivery = new WebhookDelivery(webhooks, redis, deliveryConnection, log, registry);
  } else if (!webhooks.secret) {
    log.info('MODELHUB_WEBHOOK_SECRET is not set: requests with a webhook are refused');
  }
  const app = createApp(ctx);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, () => resolve(s));
    // Node's default, set here because the reconciler's release of abandoned uploads rests on it.
    s.requestTimeout = UPLOAD_TIMEOUT_MS;
    s.once('error', reject);
  });
  const metricsServer = await serveMetrics(registry, options.metricsPort, options.metricsHost);
  const metricsAddress = metricsServer.address();
  const metricsUrl = `http://${options.metricsHost}:${typeof metricsAddress === 'object' && metricsAddress ? metricsAddress.port : options.metricsPort}`;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host}:${port}`;
  log.info({ url, models: [...models.keys()] }, 'api listening');
  return {
    server,
    ctx,
    url,
    reconciler,
    metricsUrl,
    async close() {
      await reconciler.stop();
      metricsServer.close();
      // Stop accepting, end the waits held open (predict, Prefer: wait) so their requests
      // answer, then let the server finish and drop idle keep-alive sockets.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await jobs.close();
      await batches.close();
      await predict.close();
      await ctx.board.close();
      // Keep-alive sockets would hold close() until they time out: give answers in flight a
      // moment, then cut what is left.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      server.closeAllConnections();
      await closed;
      await delivery?.close();
      deliveryConnection?.disconnect();
      await ctx.offloop.close();
      redis.disconnect();
      reader.disconnect();
    },
  };
}
