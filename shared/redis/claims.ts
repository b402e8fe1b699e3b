/**
 * The run/cancel claim: whoever claims a job first, a worker starting it or a cancel, decides,
 * so a job is never both canceled and run. Each side is one Lua script (the .lua files next to
 * this module), registered with ioredis `defineCommand`: sent by SHA, and routed by its keys on
 * a Redis Cluster (the claim and BullMQ's lock share the queue's hash slot).
 */
import type { RedisClient } from './connection.js';
import { jobClaimKey, jobLockKey } from './keys.js';
import { luaCommands } from './lua-commands.js';

export type JobClaim = 'running' | 'canceled';

interface ClaimCommands {
  modelhubClaimForRun(claimKey: string, ttlS: number): Promise<JobClaim>;
  modelhubClaimForCancel(claimKey: string, lockKey: string, ttlS: number): Promise<JobClaim>;
}

const commands = luaCommands<ClaimCommands>({
  modelhubClaimForRun: { file: 'claim-for-run.lua', numberOfKeys: 1 },
  modelhubClaimForCancel: { file: 'claim-for-cancel.lua', numberOfKeys: 2 },
});

/** A worker starting a job: claims it "running" unless a cancel came first (a retry keeps its claim). */
export function claimForRun(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  return commands(redis).modelhubClaimForRun(jobClaimKey(prefix, model, jobId), ttlS);
}

/** A cancel: claims the job "canceled" unless a worker is running it right now. */
export function claimForCancel(redis: RedisClient, prefix: string, model: string, jobId: string, ttlS: number): Promise<JobClaim> {
  return commands(redis).modelhubClaimForCancel(jobClaimKey(prefix, model, jobId), jobLockKey(prefix, model, jobId), ttlS);
}
