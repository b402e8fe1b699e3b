/** The ingress process: `node --enable-source-maps dist/api/main.js` (scale it out behind a load balancer; it keeps no state). */
import { loadConfig, warnDeprecatedSettings } from '../shared/config.js';
import { createLogger, logOptions } from '../shared/logger.js';
import { startApi } from './server.js';
import { stopTracing } from '../shared/tracing.js';

const config = loadConfig();
const log = createLogger('api', logOptions(config));
warnDeprecatedSettings(log);
// A safety net: a library promise rejected without a handler (seen with Redis hiccups) must not
// take the ingress down; it is logged instead.
process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));

startApi(config)
  .then((api) => {
    const stop = async () => {
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, 15_000).unref();
      await api.close();
      await stopTracing();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
  })
  .catch((err) => {
    log.fatal({ err }, `api failed to start: ${(err as Error).message}`);
    process.exit(1);
  });
