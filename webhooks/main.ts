/**
 * A process that only delivers webhooks: `npm run start:webhooks`. Use it (with
 * WEBHOOK_DELIVERY=off on the API) to scale delivery apart from the ingress.
 */
import { loadConfig, warnDeprecatedSettings } from '../shared/config.js';
import { workerMetricsPort } from '../shared/options/worker.js';
import { createLogger, logOptions } from '../shared/logger.js';
import { createRegistry, serveMetrics } from '../shared/metrics.js';
import { createRedis } from '../shared/redis/connection.js';
import { WebhookDelivery } from './delivery.js';
import { startTracing, stopTracing } from '../shared/tracing.js';
import { webhookOptions } from '../shared/webhooks/options.js';

const config = loadConfig();
// Before the delivery worker is made: BullMQ takes its telemetry when it is built.
await startTracing('webhooks');
const log = createLogger('webhooks', logOptions(config));
warnDeprecatedSettings(log);
const registry = createRegistry('webhooks');
const delivery = new WebhookDelivery(
  webhookOptions(config),
  createRedis(config, { blocking: false }),
  createRedis(config, { blocking: true }),
  log,
  registry,
);
const server = await serveMetrics(registry, workerMetricsPort(config), config.HOST);
log.info('webhook delivery running');
const stop = async () => {
  await delivery.close();
  server.close();
  await stopTracing();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
