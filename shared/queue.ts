/**
 * Queue naming, Redis connections and the job payload shared by the API (producer) and the
 * workers (consumers). One BullMQ queue per model; everything lives under MODELHUB_PREFIX.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { JobsOptions } from 'bullmq';
import type { Config } from './config.js';

/**
 * BullMQ queue name of a model. The braces are a Redis Cluster hash tag: all keys of one queue
 * share a slot (BullMQ's scripts need that), while different models' queues spread over shards.
 */
export function modelQueueName(model: string): string {
  return `{model.${model}}`;
}

/** Redis key mapping a job id to its model (and tenant), so GET /v1/jobs/:id finds the queue. */
export function jobIndexKey(prefix: string, jobId: string): string {
  return `${prefix}:jobindex:${jobId}`;
}

/**
 * Who got a job first: a worker starting it ("running") or a cancel ("canceled"). Whoever wins
 * decides, so a job is never both canceled and run. The key shares its queue's hash slot, so
 * the cancel's check of BullMQ's lock key is one atomic script on a Redis Cluster too.
 */
export function jobClaimKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:${modelQueueName(model)}:claim:${jobId}`;
}

/** BullMQ's lock of a running job (held while a worker runs it, renewed, gone when it dies). */
function jobLockKey(prefix: string, model: string, jobId: string): string {
  return `${prefix}:${modelQueueName(model)}:${jobId}:lock`;
}

export type JobClaim = 'running' | 'canceled';

/** A worker starting a job: claims it "running" unless a cancel came first (a retry keeps its claim). */
export async function claimForRun(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  const key = jobClaimKey(prefix, model, jobId);
  if (await redis.set(key, 'running', 'EX', ttlS, 'NX')) return 'running';
  return ((await redis.get(key)) as JobClaim | null) ?? 'running';
}

// A "running" claim only stands while a worker holds the job's lock: one left by an earlier
// attempt (a retry waiting in the queue, or a dead worker's job) no longer does.
const CLAIM_FOR_CANCEL = `
local claim = redis.call('GET', KEYS[1])
if claim == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then return 'running' end
redis.call('SET', KEYS[1], 'canceled', 'EX', ARGV[1])
return 'canceled'`;

/** A cancel: claims the job "canceled" unless a worker is running it right now. */
export async function claimForCancel(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  return (await redis.eval(CLAIM_FOR_CANCEL, 2, jobClaimKey(prefix, model, jobId), jobLockKey(prefix, model, jobId), ttlS)) as JobClaim;
}

/** Idempotency-Key → job, per tenant. The client's key is hashed: it may be long or odd. */
export function idempotencyKey(prefix: string, tenant: string | null, keyHash: string): string {
  return `${prefix}:idem:${tenant ?? '-'}:${keyHash}`;
}

/** Webhook delivery record of a job: attempts, last_status, delivered_at. */
export function webhookStatusKey(prefix: string, jobId: string): string {
  return `${prefix}:webhook:${jobId}`;
}

export const WEBHOOK_QUEUE = '{webhooks}';

export function workerRegistryKey(prefix: string): string {
  return `${prefix}:workers`;
}

export interface RedisRole {
  /** Blocking consumers (BullMQ Worker, QueueEvents) must retry forever; producers should fail fast. */
  blocking: boolean;
}

/** A single Redis or a Redis Cluster: BullMQ and every command here work with either. */
export type RedisClient = Redis | Cluster;

/** "host:port,host:port" → cluster seed nodes. */
export function parseClusterNodes(spec: string): { host: string; port: number }[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const i = hp.lastIndexOf(':');
      const port = Number(hp.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port)) throw new Error(`REDIS_CLUSTER_NODES: "${hp}" is not host:port`);
      return { host: hp.slice(0, i), port };
    });
}

export function createRedis(config: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>, role: RedisRole): RedisClient {
  const options: RedisOptions = role.blocking
    ? { maxRetriesPerRequest: null, enableReadyCheck: true }
    : // Producers answer 503 quickly while Redis is down (or hung) instead of waiting forever.
      { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 5000 };
  const retryStrategy = (times: number) => Math.min(times * 200, 2000);
  if (config.REDIS_CLUSTER_NODES) {
    return new Cluster(parseClusterNodes(config.REDIS_CLUSTER_NODES), {
      redisOptions: options,
      clusterRetryStrategy: retryStrategy,
      enableOfflineQueue: options.enableOfflineQueue ?? true,
      enableReadyCheck: true,
    });
  }
  return new Redis(config.REDIS_URL, { ...options, retryStrategy });
}

export type WebhookEvent = 'start' | 'completed';

/** What the API enqueues. `input` is the validated spec input. */
export interface JobData {
  model: string;
  input: Record<string, unknown>;
  tenant: string | null;
  /** Epoch ms; a job still queued past it is never run, a running one past it is failed. */
  deadline_at?: number;
  webhook?: { url: string; events: WebhookEvent[] };
}

/** What a worker returns for a finished job. */
export interface JobResult {
  output: Record<string, unknown>;
  metrics: { inference_ms: number; preprocess_ms: number; batch_size: number; device: string; worker: string };
}

export function defaultJobOptions(config: Pick<Config, 'JOB_RETENTION_S' | 'JOB_RETENTION_COUNT' | 'JOB_ATTEMPTS'>): JobsOptions {
  return {
    attempts: Math.max(1, config.JOB_ATTEMPTS),
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: config.JOB_RETENTION_S, count: config.JOB_RETENTION_COUNT },
    removeOnFail: { age: config.JOB_RETENTION_S, count: config.JOB_RETENTION_COUNT },
  };
}
