/**
 * Live workers: each worker writes a heartbeat into one Redis hash every few seconds; readers
 * treat an entry silent for MISSED_HEARTBEATS of its intervals as dead and remove it.
 */
import type { RedisClient } from './redis/connection.js';
import { workerRegistryKey } from './redis/keys.js';

export interface WorkerInfo {
  id: string;
  device: string;
  models: string[];
  pid: number;
  host: string;
  version: string;
  started_at: string;
  heartbeat_at: number;
  /** This worker's heartbeat interval, ms. */
  heartbeat_ms: number;
  /** Per model: the batching this worker applies (max_batch_size capped by a fixed batch dimension of the file). */
  batching: Partial<Record<string, { max_batch_size: number; max_queue_delay_ms: number }>>;
  /** Per model: the weights file loaded (absent from workers of earlier releases). */
  weights?: Record<
    string,
    { file: string; sha256: string; kind: 'real' | 'test'; verification?: 'verified' | 'unverified' | 'test' }
  >;
  /**
   * The predict entry version this worker reads on every model it serves (shared/predict/entry.ts);
   * absent from workers of earlier releases, which never consume the predict lane.
   */
  entries?: number;
  /** Jobs held (running or in the batcher) per model at the last heartbeat. */
  load: Record<string, number>;
}

/** A worker whose last heartbeat is older than this many of its own intervals is dead. */
export const MISSED_HEARTBEATS = 3;

export async function publishHeartbeat(redis: RedisClient, prefix: string, info: WorkerInfo): Promise<void> {
  await redis.hset(workerRegistryKey(prefix), info.id, JSON.stringify(info));
}

export async function removeWorker(redis: RedisClient, prefix: string, id: string): Promise<void> {
  await redis.hdel(workerRegistryKey(prefix), id);
}

export async function listLiveWorkers(redis: RedisClient, prefix: string, now = Date.now()): Promise<WorkerInfo[]> {
  const all = await redis.hgetall(workerRegistryKey(prefix));
  const live: WorkerInfo[] = [];
  const dead: string[] = [];
  for (const [id, json] of Object.entries(all)) {
    const info = JSON.parse(json) as WorkerInfo;
    if (now - info.heartbeat_at > MISSED_HEARTBEATS * info.heartbeat_ms) dead.push(id);
    else live.push(info);
  }
  if (dead.length > 0) await redis.hdel(workerRegistryKey(prefix), ...dead);
  return live.sort((a, b) => a.id.localeCompare(b.id));
}
