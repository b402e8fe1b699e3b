/** Builds and starts the API: configuration, model repository, queues, HTTP server. */
import type { Server } from 'node:http';
import { loadConfig, type Config } from '../shared/config.js';
import { createLogger, logOptions } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import { createRegistry, registerBacklog, registerQueueDepth } from '../shared/metrics.js';
import { createRedis } from '../shared/redis/connection.js';
import { WebhookDelivery } from '../webhooks/delivery.js';
import { parseApiKeys } from './auth.js';
import { createApp } from './app.js';
import type { ApiContext } from './context.js';
import { BatchService } from './batch-service.js';
import { validateInput } from './input-validation.js';
import { JobService } from './job-service.js';
import { createApiMetrics } from './metrics.js';

export const VERSION = '0.1.0';

export interface RunningApi {
  server: Server;
  ctx: ApiContext;
  url: string;
  close(): Promise<void>;
}

export async function startApi(config: Config = loadConfig()): Promise<RunningApi> {
  const log = createLogger('api', logOptions(config));
  const models = loadModelRepository(config);
  for (const entry of models.values()) {
    if (!entry.modelPath) log.warn({ model: entry.manifest.name, problem: entry.problem }, 'model listed as unavailable');
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
  const jobs = new JobService(models, redis, config, log);
  const batches = new BatchService(jobs, redis, config, log, (model, value) => validateInput(jobs.model(model), value, config));
  registerQueueDepth(registry, () => jobs.queues.entries());
  registerBacklog(registry, redis, () => [...jobs.queues.keys()].map((model) => ({ model, interactive: jobs.queues.get(model)!, bulk: batches.queues.get(model)! })));
  const ctx: ApiContext = { version: VERSION, config, log, models, redis, jobs, batches, registry, metrics: createApiMetrics(registry) };
  const keys = parseApiKeys(config.MODELHUB_API_KEYS);
  if (keys.length === 0) log.warn('MODELHUB_API_KEYS is not set: the API is open to anyone who can reach it');
  else log.info({ tenants: [...new Set(keys.map((k) => k.tenant))].length }, 'API keys required');
  let delivery: WebhookDelivery | null = null;
  const deliveryConnection = config.WEBHOOK_SECRET && config.WEBHOOK_DELIVERY === 'on' ? createRedis(config, { blocking: true }) : null;
  if (deliveryConnection) {
    delivery = new WebhookDelivery(config, redis, deliveryConnection, log, registry);
  } else if (!config.WEBHOOK_SECRET) {
    log.info('WEBHOOK_SECRET is not set: requests with a webhook are refused');
  }
  const app = createApp(ctx);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST}:${port}`;
  log.info({ url, models: [...models.keys()] }, 'api listening');
  return {
    server,
    ctx,
    url,
    async close() {
      // Stop accepting, end the waits held open (predict, Prefer: wait) so their requests
      // answer, then let the server finish and drop idle keep-alive sockets.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await jobs.close();
      await batches.close();
      // Keep-alive sockets would hold close() until they time out: give answers in flight a
      // moment, then cut what is left.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      server.closeAllConnections();
      await closed;
      await delivery?.close();
      deliveryConnection?.disconnect();
      redis.disconnect();
    },
  };
}
