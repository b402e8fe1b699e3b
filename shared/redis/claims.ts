/**
 * The run/cancel claim: whoever claims a job first, a worker starting it or a cancel, decides,
 * so a job is never both canceled and run. Each side is one Lua script (claim-for-run.lua,
 * claim-for-cancel.lua); the claim and BullMQ's lock share the queue's hash slot, so the cancel's
 * check of the lock is atomic on a Redis Cluster too. The first claim also takes the job off its
 * tenant's waiting count (the per-tenant quota), in the same script.
 */
import type { RedisClient } from './connection.js';
import { jobClaimKey, jobLockKey, tenantStoredKey, tenantWaitingKey } from './keys.js';
import { scripts } from './scripts.js';

export type JobClaim = 'running' | 'canceled';

/** A worker starting a job: claims it "running" unless a cancel came first (a retry keeps its claim). */
export async function claimForRun(
  redis: RedisClient,
  prefix: string,
  model: string,
  jobId: string,
  ttlS: number,
  tenant: string | null = null,
): Promise<JobClaim> {
  return (await scripts(redis).modelhubClaimForRun(
    jobClaimKey(prefix, model, jobId),
    tenantWaitingKey(prefix, model, tenant),
    ttlS,
  )) as JobClaim;
}

/**
 * A cancel: claims the job "canceled" unless a worker is running it right now. A job's input
 * bytes counted at submit (`inputBytes`) leave its tenant's stored bytes with the claim.
 */
export async function claimForCancel(
  redis: RedisClient,
  prefix: string,
  model: string,
  jobId: string,
  ttlS: number,
  tenant: string | null = null,
  inputBytes = 0,
): Promise<JobClaim> {
  const keys = [
    jobClaimKey(prefix, model, jobId),
    jobLockKey(prefix, model, jobId),
    tenantWaitingKey(prefix, model, tenant),
    tenantStoredKey(prefix, model, tenant),
  ] as const;
  return (await scripts(redis).modelhubClaimForCancel(...keys, ttlS, inputBytes, ttlS)) as JobClaim;
}
