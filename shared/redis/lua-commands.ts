/**
 * ModelHub's Lua scripts (the .lua files in this folder) as ioredis commands: registered once per
 * connection with `defineCommand`, then sent by SHA and, on a Redis Cluster, routed by their keys.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './connection.js';

/** Read relative to this module, so tsx (shared/redis/) and compiled runs (dist/shared/redis/) both find them. */
const script = (file: string) => readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');

/**
 * command name → its .lua file, how many of its arguments are keys (omitted: a variable number,
 * passed as the call's first argument), and the library files put before it (plain EVAL has no
 * includes; a library holds helpers several scripts share).
 */
export type LuaCommandFiles = Record<string, { file: string; numberOfKeys?: number; include?: string[] }>;

/** Returns a function giving a connection with the commands defined (typed as `T`). */
export function luaCommands<T>(files: LuaCommandFiles): (redis: RedisClient) => T {
  const scripts = Object.entries(files).map(([name, { file, numberOfKeys, include = [] }]) => ({
    name,
    numberOfKeys,
    lua: [...include, file].map(script).join('\n'),
  }));
  const defined = new WeakSet<RedisClient>();
  return (redis) => {
    if (!defined.has(redis)) {
      for (const { name, numberOfKeys, lua } of scripts) redis.defineCommand(name, { numberOfKeys, lua });
      defined.add(redis);
    }
    return redis as unknown as T;
  };
}
