/**
 * ModelHub's own Lua scripts (the .lua files next to this module), registered on a client with
 * ioredis `defineCommand`: sent by SHA, and routed by their keys on a Redis Cluster. Files are
 * read relative to this module, so tsx (shared/redis/) and compiled runs (dist/shared/redis/)
 * both find them.
 */
import { luaCommands } from './lua-commands.js';

const SCRIPTS = {
  modelhubClaimForRun: { file: 'claim-for-run.lua', numberOfKeys: 2 },
  modelhubClaimForCancel: { file: 'claim-for-cancel.lua', numberOfKeys: 4 },
  modelhubFinishJob: { file: 'finish-job.lua', numberOfKeys: 5 },
  modelhubForgetRetained: { file: 'forget-retained.lua', numberOfKeys: 3 },
} as const;

export interface ScriptCommands {
  /** KEYS: claim, tenant's waiting count; ARGV: ttl s → 'running' | 'canceled'. */
  modelhubClaimForRun(claimKey: string, waitingKey: string, ttlS: number): Promise<string>;
  /** KEYS: claim, BullMQ lock, tenant's waiting count, tenant's stored bytes; ARGV: ttl s, input bytes, stored TTL s → 'running' | 'canceled'. */
  modelhubClaimForCancel(
    claimKey: string,
    lockKey: string,
    waitingKey: string,
    storedKey: string,
    ttlS: number,
    inputBytes: number,
    storedTtlS: number,
  ): Promise<string>;
  /** See finish-job.lua for the keys and arguments → ids of jobs the byte bound pushed out. */
  modelhubFinishJob(...args: (string | number)[]): Promise<string[]>;
  /** See forget-retained.lua → bytes released (0: the job held no retained result). */
  modelhubForgetRetained(
    jobKey: string,
    byTimeKey: string,
    bytesKey: string,
    jobId: string,
    tenant: string,
    tenantKeyPrefix: string,
    ttlS: number,
  ): Promise<number>;
}

/** The client with ModelHub's scripts defined on it (once per client). */
export const scripts = luaCommands<ScriptCommands>(SCRIPTS);
