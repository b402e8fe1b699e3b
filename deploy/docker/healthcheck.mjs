// Docker HEALTHCHECK for every ModelHub container (the API, a worker, webhook delivery): exits 0
// when the process in this container answers GET /healthz, on the API's port (PORT) or on a
// worker's / the webhook process's metrics port (MODELHUB_METRICS_PORT, default 9464 + MODELHUB_WORKER_INDEX).
// Ports come from the same validated configuration the processes read.
import { loadConfig, workerMetricsPort } from '../../dist/shared/config.js';

const config = loadConfig();
const ports = [...new Set([config.PORT, workerMetricsPort(config)])];
const answers = async (port) => {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3000) });
    return res.ok;
  } catch {
    return false;
  }
};
const results = await Promise.all(ports.map(answers));
process.exit(results.some(Boolean) ? 0 : 1);
