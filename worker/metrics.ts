/** The worker's Prometheus metrics. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../shared/metrics.js';

export function createWorkerMetrics(registry: Registry) {
  const md = ['model', 'device'] as const;
  return {
    jobs: new Counter({
      name: 'modelhub_worker_jobs_total',
      help: 'Jobs finished by this worker, by model and outcome (succeeded, failed, retried, canceled)',
      labelNames: ['model', 'outcome'],
      registers: [registry],
    }),
    locksLost: new Counter({
      name: 'modelhub_worker_locks_lost_total',
      help: 'Running jobs whose lock this worker lost (stopped or starved past MODELHUB_LOCK_MS); another worker runs them',
      labelNames: ['model'],
      registers: [registry],
    }),
    batchItems: new Counter({
      name: 'modelhub_worker_batch_items_total',
      help: 'Batch items finished by this worker, by model and outcome (succeeded, failed, canceled)',
      labelNames: ['model', 'outcome'],
      registers: [registry],
    }),
    batchChunks: new Counter({
      name: 'modelhub_worker_batch_chunks_total',
      help: 'Batch chunks (queue entries of a batch) finished by this worker',
      labelNames: ['model'],
      registers: [registry],
    }),
    queueWaitSeconds: new Histogram({
      name: 'modelhub_queue_wait_seconds',
      help: 'Time from enqueue to a worker starting the job',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    preprocessSeconds: new Histogram({
      name: 'modelhub_preprocess_seconds',
      help: 'Per-job preprocessing time (decode, resize, tokenize)',
      labelNames: md,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceSeconds: new Histogram({
      name: 'modelhub_inference_seconds',
      help: 'Time of one session.run (one inference batch)',
      labelNames: md,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    jobDurationSeconds: new Histogram({
      name: 'modelhub_job_duration_seconds',
      help: 'End to end, from enqueue to result stored',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceBatchSize: new Histogram({
      name: 'modelhub_batch_size',
      help: 'Jobs per session.run',
      labelNames: md,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    sessionRuns: new Counter({
      name: 'modelhub_session_runs_total',
      help: 'onnxruntime session.run calls (inference batches)',
      labelNames: md,
      registers: [registry],
    }),
    inferenceErrors: new Counter({
      name: 'modelhub_inference_errors_total',
      help: 'session.run calls that threw',
      labelNames: md,
      registers: [registry],
    }),
    modelLoadSeconds: new Gauge({
      name: 'modelhub_model_load_seconds',
      help: 'Time to create the model session on this device',
      labelNames: md,
      registers: [registry],
    }),
    maxInferenceBatchSize: new Gauge({
      name: 'modelhub_model_max_batch_size',
      help: 'Largest inference batch this worker forms for the model (the manifest, capped by a fixed batch dimension of the model file)',
      labelNames: md,
      registers: [registry],
    }),
    weightsInfo: new Gauge({
      name: 'modelhub_model_weights_info',
      help: 'The weights file loaded for the model (1): file name, sha256, real or test weights, and verified, unverified or test',
      labelNames: ['model', 'device', 'file', 'sha256', 'weights', 'verification'],
      registers: [registry],
    }),
    up: new Gauge({
      name: 'modelhub_worker_up',
      help: '1 while the worker takes jobs, 0 while it shuts down',
      labelNames: ['device'],
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
