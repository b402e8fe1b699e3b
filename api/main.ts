/** The ingress process: `tsx api/main.ts` (scale it out behind a load balancer; it keeps no state). */
import { createLogger } from '../shared/logger.js';
import { startApi } from './server.js';

startApi()
  .then((api) => {
    const stop = async () => {
      await api.close();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop());
    process.on('SIGINT', () => void stop());
  })
  .catch((err) => {
    createLogger('api').fatal({ err }, `api failed to start: ${(err as Error).message}`);
    process.exit(1);
  });
