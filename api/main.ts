/** The ingress process: `tsx api/main.ts` (scale it out behind a load balancer; it keeps no state). */
import { createLogger } from '../shared/logger.js';
import { startApi } from './server.js';

const log = createLogger('api');
// A safety net: a library promise rejected without a handler (seen with Redis hiccups) must not
// take the ingress down; it is logged instead.
process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));

startApi()
  .then((api) => {
    const stop = async () => {
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, 15_000).unref();
      await api.close();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
  })
  .catch((err) => {
    log.fatal({ err }, `api failed to start: ${(err as Error).message}`);
    process.exit(1);
  });
