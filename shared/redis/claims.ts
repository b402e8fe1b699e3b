/**
 * The run/cancel claim: whoever claims a job first, a worker starting it or a cancel, decides,
 * so a job is never both canceled and run. Each side is one Lua script (the .lua files next to
 * this module), registered with ioredis `defineCommand`: sent by SHA, and routed by its keys on
 * a Redis Cluster (the claim and BullMQ's lock share the queue's hash slot).
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './connection.js';
import { jobClaimKey, jobLockKey } from './keys.js';

export type JobClaim = 'running' | 'canceled';

/** Read relative to this module, so tsx (shared/redis/) and compiled runs (dist/shared/redis/) both find them. */
const script = (name: string) => readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');
const CLAIM_FOR_RUN = script('claim-for-run.lua');
const CLAIM_FOR_CANCEL = script('claim-for-cancel.lua');

interface ClaimCommands {
  modelhubClaimForRun(claimKey: string, ttlS: number): Promise<JobClaim>;
  modelhubClaimForCancel(claimKey: string, lockKey: string, ttlS: number): Promise<JobClaim>;
}

const defined = new WeakSet<RedisClient>();

function commands(redis: RedisClient): ClaimCommands {
  if (!defined.has(redis)) {
    redis.defineCommand('modelhubClaimForRun', { numberOfKeys: 1, lua: CLAIM_FOR_RUN });
    redis.defineCommand('modelhubClaimForCancel', { numberOfKeys: 2, lua: CLAIM_FOR_CANCEL });
    defined.add(redis);
  }
  return redis as unknown as ClaimCommands;
}

/** A worker starting a job: claims it "running" unless a cancel came first (a retry keeps its claim). */
export function claimForRun(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  return commands(redis).modelhubClaimForRun(jobClaimKey(prefix, model, jobId), ttlS);
}

/** A cancel: claims the job "canceled" unless a worker is running it right now. */
export function claimForCancel(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  return commands(redis).modelhubClaimForCancel(jobClaimKey(prefix, model, jobId), jobLockKey(prefix, model, jobId), ttlS);
}
