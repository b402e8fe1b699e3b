/** What the routes share: options, models, the job service, Redis and metrics. */
import type { Registry } from 'prom-client';
import type { ApiOptions } from '../shared/options/api.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import type { ModelEntry } from '../shared/manifest.js';
import type { BatchService } from './batch-service.js';
import type { JobService } from './job-service.js';
import type { PredictService } from './predict-service.js';
import type { ApiMetrics } from './metrics.js';
import type { OffloopPool } from '../shared/offloop/pool.js';
import type { QueueBoard } from './queue-board.js';

export interface ApiContext {
  version: string;
  /** The API's options (with the intake's, the tenants' and the webhooks'), resolved once by startApi. */
  options: ApiOptions;
  log: Logger;
  models: Map<string, ModelEntry>;
  redis: RedisClient;
  jobs: JobService;
  batches: BatchService;
  /** Synchronous predict, coalesced while calls are in flight. */
  predict: PredictService;
  registry: Registry;
  metrics: ApiMetrics;
  /** Threads for large request bodies (OFFLOOP_PARSE_BYTES). */
  offloop: OffloopPool;
  /** The read-only queue board for admin keys (/admin/queues). */
  board: QueueBoard;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** The caller's tenant (from its API key), or null when the API is open. */
    tenant: string | null;
    /** An admin key (or an open API): operator details such as /v1/workers' hosts and pids. */
    admin: boolean;
  }
}
