/** Builds and starts the API: configuration, model repository, queues, HTTP server. */
import type { Server } from 'node:http';
import { loadConfig, type Config } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import { createRegistry, registerQueueDepth } from '../shared/metrics.js';
import { createRedis } from '../shared/queue.js';
import { createApp } from './app.js';
import type { ApiContext } from './context.js';
import { JobService } from './job-service.js';
import { createApiMetrics } from './metrics.js';

export interface RunningApi {
  server: Server;
  ctx: ApiContext;
  url: string;
  close(): Promise<void>;
}

export async function startApi(config: Config = loadConfig()): Promise<RunningApi> {
  const log = createLogger('api', config.LOG_LEVEL);
  const models = loadModelRepository(config);
  for (const entry of models.values()) {
    if (!entry.modelPath) log.warn({ model: entry.manifest.name, problem: entry.problem }, 'model listed as unavailable');
  }
  const redis = createRedis(config, { blocking: false });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const registry = createRegistry('api');
  const jobs = new JobService(models, redis, config, log);
  registerQueueDepth(registry, () => jobs.queues.entries());
  const ctx: ApiContext = { config, log, models, redis, jobs, registry, metrics: createApiMetrics(registry) };
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await jobs.close();
      redis.disconnect();
    },
  };
}
