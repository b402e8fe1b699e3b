/** The API's Prometheus metrics. */
import { Counter, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../shared/metrics.js';

export function createApiMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'modelhub_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'modelhub_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    jobsSubmitted: new Counter({
      name: 'modelhub_jobs_submitted_total',
      help: 'Jobs accepted into a model queue',
      labelNames: ['model'],
      registers: [registry],
    }),
    batchesSubmitted: new Counter({
      name: 'modelhub_batches_submitted_total',
      help: 'Batches accepted into a model bulk lane',
      labelNames: ['model'],
      registers: [registry],
    }),
    batchItemsSubmitted: new Counter({
      name: 'modelhub_batch_items_submitted_total',
      help: 'Items of the batches accepted',
      labelNames: ['model'],
      registers: [registry],
    }),
    predictEntryItems: new Histogram({
      name: 'modelhub_predict_entry_items',
      help: 'Predict calls per queue entry sent (1: a call alone; more: calls coalesced into one entry)',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    jobsRejected: new Counter({
      name: 'modelhub_jobs_rejected_total',
      help: 'Submissions (jobs, predicts, batches) refused, by model, route, error code and reason',
      labelNames: ['model', 'route', 'error_code', 'reason'],
      registers: [registry],
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;
