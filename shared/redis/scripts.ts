/**
 * ModelHub's own Lua scripts (the .lua files next to this module), registered on a client with
 * ioredis `defineCommand`: sent by SHA, and routed by their keys on a Redis Cluster. Files are
 * read relative to this module, so tsx (shared/redis/) and compiled runs (dist/shared/redis/)
 * both find them.
 */
import { luaCommands } from './lua-commands.js';

const SCRIPTS = {
  modelhubClaimForRun: { file: 'claim-for-run.lua', numberOfKeys: 2 },
  modelhubClaimForCancel: { file: 'claim-for-cancel.lua', numberOfKeys: 3 },
  modelhubDropJobInput: { file: 'drop-job-input.lua', numberOfKeys: 1 },
} as const;

export interface ScriptCommands {
  /** KEYS: claim, tenant's waiting count; ARGV: ttl s → 'running' | 'canceled'. */
  modelhubClaimForRun(claimKey: string, waitingKey: string, ttlS: number): Promise<string>;
  /** KEYS: claim, BullMQ lock, tenant's waiting count; ARGV: ttl s → 'running' | 'canceled'. */
  modelhubClaimForCancel(claimKey: string, lockKey: string, waitingKey: string, ttlS: number): Promise<string>;
  /** KEYS: the job's hash; ARGV: its data without input → 1 when replaced, 0 when the job is gone. */
  modelhubDropJobInput(jobKey: string, data: string): Promise<number>;
}

/** The client with ModelHub's scripts defined on it (once per client). */
export const scripts = luaCommands<ScriptCommands>(SCRIPTS);
