/**
 * GET /v1/usage reports the live counters a tenant's 429s are decided on. After a mixed workload
 * (jobs run, canceled while queued, deleted once finished) they equal what this test recomputes
 * from the jobs that exist, and exactly zero once every job is deleted.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputBytesOf } from '../../shared/jobs/accounting.js';
import { modelQueueName } from '../../shared/redis/keys.js';
import { jobHashKey } from '../../shared/redis/bullmq-internals.js';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const ALICE = 'alice-key-usage-test-0000';
const BOB = 'bob-key-usage-test-000000';
const ADMIN = 'admin-key-usage-test-0000';
const MODEL = 'text-direction';
const as = (key: string) => ({ Authorization: `Bearer ${key}`, 'content-type': 'application/json' });

describe('GET /v1/usage', () => {
  let hub: Hub;
  let redis: Redis;
  let queue: Queue;
  beforeAll(async () => {
    hub = await startHub({
      name: 'usage',
      models: MODEL,
      workers: 0,
      env: { MODELHUB_API_KEYS: `${ALICE}:alice,${BOB}:bob,${ADMIN}:ops:admin`, TENANT_RATE_RPS: '0' },
    });
    redis = new Redis(REDIS_URL);
    queue = new Queue(modelQueueName(MODEL), { connection: redis, prefix: hub.prefix });
  });
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await hub?.stop();
  });

  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${hub.url}${path}`, {
      method,
      headers: as(key),
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, body: (await r.json()) as any };
  };

  /** What the tenant holds, recomputed from the jobs that exist (not from any counter). */
  async function recomputed(ids: string[]): Promise<{ waiting: number; stored: number }> {
    let waiting = 0;
    let stored = 0;
    for (const id of ids) {
      const job = await queue.getJob(id);
      if (!job) continue;
      const state = await job.getState();
      const claimed = (await redis.exists(`${hub.prefix}:${modelQueueName(MODEL)}:claim:${id}`)) === 1;
      if (state === 'completed') stored += await redis.hstrlen(jobHashKey(hub.prefix, MODEL, id), 'returnvalue');
      else if (state !== 'failed' && !claimed) {
        waiting += 1;
        stored += inputBytesOf(job.data.input);
      } else if (state !== 'failed') stored += inputBytesOf(job.data.input);
    }
    return { waiting, stored };
  }

  it('equals the truth after jobs run, are canceled and deleted, and is zero once all are deleted', async () => {
    const images = await Promise.all(
      [1, 2, 3].map(async (k) => b64(await solidImage(40 * k, 30 * k, [k * 60, 20, 90]))),
    );
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const r = await call(ALICE, 'POST', `/v1/models/${MODEL}/jobs`, { input: { image: images[i % 3] } });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    // Queued: each counts as waiting, its input as stored.
    const queued = (await call(ALICE, 'GET', '/v1/usage')).body;
    expect(queued.tenant).toBe('alice');
    expect(queued.models[MODEL].waiting).toEqual({ used: 24, limit: 1000 });
    expect(queued.models[MODEL].stored_bytes.used).toBe((await recomputed(ids)).stored);
    // Bob holds nothing; he may not read Alice's usage; an admin may.
    expect((await call(BOB, 'GET', '/v1/usage')).body.models[MODEL].waiting.used).toBe(0);
    expect((await call(BOB, 'GET', '/v1/usage?tenant=alice')).status).toBe(403);
    expect((await call(ADMIN, 'GET', '/v1/usage?tenant=alice')).body.models[MODEL].waiting.used).toBe(24);

    for (const id of ids.filter((_, i) => i % 3 === 0))
      expect((await call(ALICE, 'POST', `/v1/jobs/${id}/cancel`)).status).toBe(200);
    expect((await call(ALICE, 'GET', '/v1/usage')).body.models[MODEL].waiting.used).toBe(16);

    await hub.addWorker();
    for (const id of ids)
      await expect
        .poll(async () => (await call(ALICE, 'GET', `/v1/jobs/${id}`)).body.status, { timeout: 60_000, interval: 100 })
        .toMatch(/succeeded|canceled/);
    for (const id of ids.filter((_, i) => i % 2 === 0))
      expect((await call(ALICE, 'DELETE', `/v1/jobs/${id}`)).status).toBe(200);

    // The worker records each job just after BullMQ completes it.
    const truth = await recomputed(ids);
    await expect
      .poll(async () => (await call(ALICE, 'GET', '/v1/usage')).body.models[MODEL], { timeout: 10_000 })
      .toMatchObject({ waiting: { used: truth.waiting }, stored_bytes: { used: truth.stored } });
    expect(truth.waiting).toBe(0);
    expect(truth.stored).toBeGreaterThan(0);
    // Nothing for the reconciler to settle: the counters already agree with the jobs.
    await hub.api.reconciler.reconcileAll();
    expect((await call(ALICE, 'GET', '/v1/usage')).body.models[MODEL].stored_bytes.used).toBe(truth.stored);

    for (const id of ids.filter((_, i) => i % 2 === 1))
      expect((await call(ALICE, 'DELETE', `/v1/jobs/${id}`)).status).toBe(200);
    expect((await call(ALICE, 'GET', '/v1/usage')).body.models[MODEL]).toEqual({
      waiting: { used: 0, limit: 1000 },
      stored_bytes: { used: 0, limit: 256 * 1024 * 1024 },
      batches_in_flight: 0,
      batch_items: { used: 0, limit: 100_000 },
      batch_stored_bytes: 0,
    });
    // The rate buckets beside the counters: requests unlimited here (TENANT_RATE_RPS 0), bytes at the default.
    expect((await call(ALICE, 'GET', '/v1/usage')).body.rates).toMatchObject({
      requests: { per_second: 0, burst: 0, available: 0 },
      bytes: { per_second: 50 * 1024 * 1024 },
    });
  }, 120_000);
});
