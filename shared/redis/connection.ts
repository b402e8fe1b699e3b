/** Redis connections: a single server or a Redis Cluster, for blocking consumers or fail-fast producers. */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';

/** A single Redis or a Redis Cluster: BullMQ and every command ModelHub sends work with either. */
export type RedisClient = Redis | Cluster;

export interface RedisRole {
  /** Blocking consumers (BullMQ Worker, QueueEvents) must retry forever; producers should fail fast. */
  blocking: boolean;
}

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

/** Where Redis is: one server, or a cluster's seed nodes. */
export type RedisSettings = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>;

export function createRedis(config: RedisSettings, role: RedisRole): RedisClient {
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
