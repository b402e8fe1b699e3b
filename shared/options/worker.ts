/**
 * The worker's settings in one place: its variables (part of the configuration schema,
 * shared/config.ts, with their defaults and checks), the options types startWorker, its model
 * runners and their tasks take, and their resolution from a loaded configuration, done once by
 * the entry point (worker/main.ts, worker/fleet.ts) and passed down.
 * A new worker setting: its variable in WORKER_SETTINGS, its field (documented, with its default)
 * in WorkerOptions (or TaskOptions, FleetOptions) and its line in the resolver, all here; then the
 * code that uses it.
 */
import { z } from 'zod';
import type { Config } from '../config.js';
import type { RetentionSettings } from '../jobs/accounting.js';
import { batchLiveTtlS, sideKeyTtlS } from '../jobs/retention.js';
import { logOptions, type LoggerOptions } from '../logger.js';
import type { RepositorySettings } from '../manifest.js';
import type { RedisSettings } from '../redis/connection.js';
import { int, ranged } from '../settings.js';
import { webhookOptions, type WebhookOptions } from '../webhooks/options.js';
import { batcherOptions, type BatcherOptions } from './batcher.js';

/** Worker i serves /metrics and /healthz on METRICS_PORT, by default this + WORKER_INDEX. */
const BASE_METRICS_PORT = 9464;

const GiB = 1024 ** 3;

/** The worker's variables (each read as MODELHUB_<name>; shared/config.ts envName). */
export const WORKER_SETTINGS = {
  /** Largest result a job may produce, bytes (estimated before it is built; 422 with error 1009 past it). */
  MAX_RESULT_BYTES: ranged(32 * 1024 * 1024, 1, 2 * GiB),
  /** Longest decode (and resize) of one image in a worker, seconds (sharp's own timeout; 422 past it). */
  IMAGE_DECODE_TIMEOUT_S: z.coerce.number().int().positive().default(10),
  /** Worker: output pixels (width × height; × masks for instance masks) past which postprocessing runs in a thread; 0 = never. */
  OFFLOOP_POSTPROCESS_PIXELS: int(500_000),
  /** Chunks one worker works on at once per model (the next is fetched while one finishes). */
  BATCH_WORKER_CHUNKS: int(2),
  /**
   * Job lock held by the worker running it, ms (renewed at half this). A worker that dies (or
   * whose event loop stalls past it) loses its jobs: others pick them up after the lock expires
   * and the next stalled check runs. Inference runs off the event loop, so a long batch is fine.
   */
  MODELHUB_LOCK_MS: int(30_000),
  /** How often each worker looks for stalled jobs (a dead worker's), ms. */
  MODELHUB_STALLED_INTERVAL_MS: int(15_000),
  /** Times a job may be recovered from a dead worker before it fails (a job that kills its worker). */
  MODELHUB_MAX_STALLED: int(2),
  /** Worker heartbeat into the registry, ms; a worker silent for 3 heartbeats is dead. */
  MODELHUB_HEARTBEAT_MS: int(5_000),
  /** Longest graceful shutdown (finish the batch in flight), ms; then the worker exits 1. */
  SHUTDOWN_TIMEOUT_MS: int(30_000),
  /** CPU workers: onnxruntime intra-op threads (0 = all cores) and inter-op threads. */
  MODELHUB_INTRA_OP_THREADS: int(0),
  MODELHUB_INTER_OP_THREADS: int(1),
  /**
   * CPU workers: whether onnxruntime's threads spin-wait between runs. Off: on a machine whose
   * cores are shared with preprocessing (sharp) and the event loop, spinning burns CPU that
   * jobs need (measured: 2.6 ms of CPU per batch-1 run of text-direction).
   */
  MODELHUB_ORT_SPINNING: z.enum(['on', 'off']).default('off'),
  /**
   * Workers: `manifest` pads images to the shape buckets a model's manifest sets
   * (batching.pad_to_bucket); `off` ignores that setting (each image keeps its own tensor shape).
   */
  MODELHUB_PAD_TO_BUCKET: z.enum(['manifest', 'off']).default('manifest'),
  /** libvips threads per image operation in a worker (sharp.concurrency); images are small, jobs run side by side. */
  MODELHUB_SHARP_THREADS: int(1),
  /** CUDA workers: cap on onnxruntime's GPU memory arena, bytes (0 = none). */
  MODELHUB_CUDA_MEM_LIMIT: int(0),
  /** Worker metrics/health port = METRICS_PORT (default 9464 + WORKER_INDEX). */
  WORKER_INDEX: int(0),
  METRICS_PORT: z.coerce.number().int().nonnegative().optional(),
  /** Worker: device (`cpu`, `cuda:N`) and models (`all` or a comma list) when --device / --models are not given. */
  MODELHUB_DEVICE: z.string().default('cpu'),
  MODELHUB_MODELS: z.string().default('all'),
  /** Fleet launcher: devices when --devices is not given, e.g. "cuda:0,cuda:1" or "cpu x2". */
  MODELHUB_DEVICES: z.string().default('cpu'),
  /** Fleet launcher: first restart delay of a worker that died, ms (unset: DEFAULT_RESTART's 1 s; doubles per crash up to 30 s). */
  FLEET_RESTART_BASE_MS: z.coerce.number().int().nonnegative().optional(),
};

/** onnxruntime session settings (worker/backend/device.ts sessionOptionsFor). */
export interface SessionTuning {
  /**
   * CPU: threads inside one operator; 0: onnxruntime's choice (all cores).
   * @defaultValue 0 (MODELHUB_INTRA_OP_THREADS)
   */
  intraOpThreads?: number;
  /** @defaultValue 1 (MODELHUB_INTER_OP_THREADS) */
  interOpThreads?: number;
  /**
   * CPU: let onnxruntime's threads spin-wait between runs (onnxruntime's default; off here unless asked).
   * @defaultValue false (MODELHUB_ORT_SPINNING=off)
   */
  spinning?: boolean;
  /**
   * CUDA: cap on the memory arena, bytes; 0: no cap.
   * @defaultValue 0 (MODELHUB_CUDA_MEM_LIMIT)
   */
  cudaMemLimit?: number;
}

/** What a model's task pipeline takes (worker/tasks/task.ts TaskContext): its inputs' and outputs' bounds. */
export interface TaskOptions {
  /**
   * Largest decoded image file, bytes (413 past it; the API checks it first).
   * @defaultValue 20971520 (MODELHUB_MAX_IMAGE_BYTES)
   */
  maxImageBytes: number;
  /**
   * Largest image in pixels, width × height (413 past it).
   * @defaultValue 40000000 (MODELHUB_MAX_IMAGE_PIXELS)
   */
  maxImagePixels: number;
  /**
   * Longest decode (and resize) of one image, seconds: sharp's own timeout (422 past it).
   * @defaultValue 10 (MODELHUB_IMAGE_DECODE_TIMEOUT_S)
   */
  decodeTimeoutS: number;
  /**
   * Largest result a job may produce, bytes, unless the model's manifest sets a lower one
   * (estimated before it is built; 422 with error 1009 past it).
   * @defaultValue 33554432 (MODELHUB_MAX_RESULT_BYTES)
   */
  maxResultBytes: number;
  /**
   * Pad images to the shape buckets the manifest sets (batching.pad_to_bucket), so they batch together.
   * @defaultValue true (MODELHUB_PAD_TO_BUCKET=manifest)
   */
  padToBucket: boolean;
  /**
   * Output pixels (width × height, × masks for instance masks) past which postprocessing runs in
   * a thread, not on the event loop; 0: never.
   * @defaultValue 500000 (MODELHUB_OFFLOOP_POSTPROCESS_PIXELS)
   */
  offloopPostprocessPixels: number;
  /**
   * Postprocessing threads per worker process; 0: half the cores, 1 to 4.
   * @defaultValue 0 (MODELHUB_OFFLOOP_THREADS)
   */
  offloopThreads: number;
}

/** What startWorker (worker/worker.ts) takes, besides its logger and hooks. */
export interface WorkerOptions {
  /**
   * Key prefix of the hub's queues and keys.
   * @defaultValue `modelhub` (MODELHUB_PREFIX)
   */
  prefix: string;
  /** @defaultValue redis://127.0.0.1:6379 (REDIS_URL); a cluster when MODELHUB_REDIS_CLUSTER_NODES is set */
  redis: RedisSettings;
  /** Where model manifests and weights are found. @defaultValue models/ (MODELHUB_MODELS_DIR and the other model settings) */
  repository: RepositorySettings;
  /** @defaultValue level `info`, format `auto` (LOG_LEVEL, MODELHUB_LOG_FORMAT) */
  logging: LoggerOptions;
  /**
   * Device the sessions run on: `cpu` or `cuda:N` (worker/main.ts: --device).
   * @defaultValue `cpu` (MODELHUB_DEVICE)
   */
  device: string;
  /**
   * Models to serve: `all` (those installed; the others are logged and skipped) or a comma list
   * (each must load) (worker/main.ts: --models).
   * @defaultValue `all` (MODELHUB_MODELS)
   */
  models: string;
  /**
   * Port of /metrics and /healthz; 0: any free one.
   * @defaultValue 9464 + MODELHUB_WORKER_INDEX (MODELHUB_METRICS_PORT)
   */
  metricsPort: number;
  /** @defaultValue 127.0.0.1 (HOST) */
  metricsHost: string;
  /**
   * Job lock, ms, renewed at half this: a worker that dies loses its jobs after it.
   * @defaultValue 30000 (MODELHUB_LOCK_MS)
   */
  lockMs: number;
  /** How often the worker looks for stalled jobs, ms. @defaultValue 15000 (MODELHUB_STALLED_INTERVAL_MS) */
  stalledIntervalMs: number;
  /** Times a job may be recovered from a dead worker before it fails. @defaultValue 2 (MODELHUB_MAX_STALLED) */
  maxStalled: number;
  /** Heartbeat into the worker registry, ms; silent for 3 is dead. @defaultValue 5000 (MODELHUB_HEARTBEAT_MS) */
  heartbeatMs: number;
  /**
   * Longest graceful stop (finish the batch in flight), ms; past it `onShutdownTimeout` is called.
   * @defaultValue 30000 (MODELHUB_SHUTDOWN_TIMEOUT_MS)
   */
  shutdownTimeoutMs: number;
  /** Batch chunks worked on at once per model. @defaultValue 2 (MODELHUB_BATCH_WORKER_CHUNKS) */
  bulkChunksAtOnce: number;
  /**
   * libvips threads per image operation (sharp.concurrency; worker/main.ts sets it for the process); 0: all cores.
   * @defaultValue 1 (MODELHUB_SHARP_THREADS)
   */
  sharpThreads: number;
  /** onnxruntime sessions. */
  session: Required<SessionTuning>;
  /** Each model's task pipeline. */
  tasks: TaskOptions;
  /** How items enter each model's batcher. */
  batcher: BatcherOptions;
  /**
   * Finished jobs' retention (age, count, bytes per model).
   * @defaultValue 86400 s, 10000, 1 GiB (MODELHUB_JOB_RETENTION_S, _COUNT, _BYTES)
   */
  retention: RetentionSettings;
  /** TTL of a job's run/cancel claim, s: the retention + 1 h. @defaultValue 90000 */
  claimTtlS: number;
  /** TTL of a running batch's keys, s: the retention + the longest deadline. @defaultValue 691200 */
  batchLiveTtlS: number;
  /** The webhook events the worker enqueues (shared/webhooks/options.ts). */
  webhooks: WebhookOptions;
}

export function taskOptions(config: Config): TaskOptions {
  return {
    maxImageBytes: config.MAX_IMAGE_BYTES,
    maxImagePixels: config.MAX_IMAGE_PIXELS,
    decodeTimeoutS: config.IMAGE_DECODE_TIMEOUT_S,
    maxResultBytes: config.MAX_RESULT_BYTES,
    padToBucket: config.MODELHUB_PAD_TO_BUCKET === 'manifest',
    offloopPostprocessPixels: config.OFFLOOP_POSTPROCESS_PIXELS,
    offloopThreads: config.OFFLOOP_THREADS,
  };
}

export function workerOptions(config: Config): WorkerOptions {
  return {
    prefix: config.MODELHUB_PREFIX,
    redis: { REDIS_URL: config.REDIS_URL, REDIS_CLUSTER_NODES: config.REDIS_CLUSTER_NODES },
    repository: {
      MODELHUB_MODELS_DIR: config.MODELHUB_MODELS_DIR,
      MODELHUB_GENERATED_DIR: config.MODELHUB_GENERATED_DIR,
      MODELHUB_TEST_MODELS: config.MODELHUB_TEST_MODELS,
      MODELHUB_WEIGHTS_DIR: config.MODELHUB_WEIGHTS_DIR,
    },
    logging: logOptions(config),
    device: config.MODELHUB_DEVICE,
    models: config.MODELHUB_MODELS,
    metricsPort: workerMetricsPort(config),
    metricsHost: config.HOST,
    lockMs: config.MODELHUB_LOCK_MS,
    stalledIntervalMs: config.MODELHUB_STALLED_INTERVAL_MS,
    maxStalled: config.MODELHUB_MAX_STALLED,
    heartbeatMs: config.MODELHUB_HEARTBEAT_MS,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    bulkChunksAtOnce: config.BATCH_WORKER_CHUNKS,
    sharpThreads: config.MODELHUB_SHARP_THREADS,
    session: {
      intraOpThreads: config.MODELHUB_INTRA_OP_THREADS,
      interOpThreads: config.MODELHUB_INTER_OP_THREADS,
      spinning: config.MODELHUB_ORT_SPINNING === 'on',
      cudaMemLimit: config.MODELHUB_CUDA_MEM_LIMIT,
    },
    tasks: taskOptions(config),
    batcher: batcherOptions(config),
    retention: {
      JOB_RETENTION_S: config.JOB_RETENTION_S,
      JOB_RETENTION_COUNT: config.JOB_RETENTION_COUNT,
      JOB_RETENTION_BYTES: config.JOB_RETENTION_BYTES,
    },
    claimTtlS: sideKeyTtlS(config),
    batchLiveTtlS: batchLiveTtlS(config),
    webhooks: webhookOptions(config),
  };
}

/** What the fleet launcher (worker/fleet.ts) takes. */
export interface FleetOptions {
  /**
   * One worker per entry: "cuda:0,cuda:1", "cpu x2" (fleet: --devices).
   * @defaultValue `cpu` (MODELHUB_DEVICES)
   */
  devices: string;
  /** Models every worker serves (fleet: --models). @defaultValue `all` (MODELHUB_MODELS) */
  models: string;
  /**
   * First restart delay of a worker that died, ms; doubles per crash up to 30 s.
   * @defaultValue unset: 1000 (MODELHUB_FLEET_RESTART_BASE_MS)
   */
  restartBaseMs: number | undefined;
  /** A worker's own graceful-stop bound, ms (the launcher kills it a little after). @defaultValue 30000 (MODELHUB_SHUTDOWN_TIMEOUT_MS) */
  shutdownTimeoutMs: number;
  /** Worker i serves its metrics on this + i. @defaultValue 9464 (MODELHUB_METRICS_PORT) */
  metricsBasePort: number;
  /** @defaultValue level `info`, format `auto` (LOG_LEVEL, MODELHUB_LOG_FORMAT) */
  logging: LoggerOptions;
}

export function fleetOptions(config: Config): FleetOptions {
  return {
    devices: config.MODELHUB_DEVICES,
    models: config.MODELHUB_MODELS,
    restartBaseMs: config.FLEET_RESTART_BASE_MS,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    metricsBasePort: config.METRICS_PORT ?? BASE_METRICS_PORT,
    logging: logOptions(config),
  };
}

/** Where a worker (or the webhooks process) serves /metrics: METRICS_PORT, or 9464 + WORKER_INDEX. */
export function workerMetricsPort(config: Pick<Config, 'METRICS_PORT' | 'WORKER_INDEX'>): number {
  return config.METRICS_PORT ?? BASE_METRICS_PORT + config.WORKER_INDEX;
}
