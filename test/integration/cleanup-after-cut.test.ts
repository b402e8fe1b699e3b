/**
 * A request that fails because its Redis connection is cut (the chaos run's client-kill-api, or a
 * Redis restart) must not leave what it staged counted or stored: its cleanup meets the same cut,
 * so it is tried again once the connection is back (shared/redis/cleanup-retry.ts). A batch upload
 * whose API died before cleaning up is released by the reconciler once the upload bound has
 * passed. Found by `npm run chaos -- --seed 9229`: a 3-item upload answered 503 kept its tenant's
 * batch counts for a week (its inputs' TTL).
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchService } from '../../api/batch-service.js';
import { PredictEntries } from '../../api/predict-entries.js';
import type { JobService } from '../../api/job-service.js';
import { BatchAccounting, UPLOAD_TIMEOUT_MS } from '../../shared/batches/accounting.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { ENTRY_PAYLOAD_VERSION } from '../../shared/predict/entry.js';
import { bullJobKey } from '../../shared/redis/bullmq-internals.js';
import { createRedis } from '../../shared/redis/connection.js';
import { accountingKeys, batchIndexKey, batchKeys, bulkQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, startHub, testPrefix } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const prefix = testPrefix('uploadfault');
const admin = new Redis(REDIS_URL);
const MODEL = 'slow';
const keys = accountingKeys(prefix, MODEL);

afterAll(async () => {
  await deletePrefix(prefix);
  admin.disconnect();
});

/** Kills `client`'s connection from another, and lets ioredis see it close (it then reconnects). */
async function cut(client: Redis): Promise<void> {
  await admin.client('KILL', 'ID', String(await client.client('ID')));
  await new Promise((r) => setTimeout(r, 20));
}

const counted = async () => ({
  records: await admin.hgetall(keys.batchRecords),
  usage: Object.fromEntries(Object.entries(await admin.hgetall(keys.usage)).filter(([, v]) => v !== '0')),
});

async function* items(n: number) {
  for (let i = 0; i < n; i++) yield { value: { image: 'x'.repeat(200 + i) } };
}

describe('a batch upload cut with its Redis connection', () => {
  it('answers 503 and, once the connection is back, leaves nothing staged or counted', async () => {
    const config = loadConfig({ ...process.env, REDIS_URL, MODELHUB_PREFIX: prefix, BATCH_CHUNK_SIZE: '4' });
    // The API's producer connection: no offline queue, so every command fails at once while it reconnects.
    const redis = createRedis(config, { blocking: false }) as Redis;
    const jobs = {
      queues: new Map([[MODEL, {}]]),
      runnableModel: () => ({}),
      accounting: { usage: async () => ({ storedBytes: 0, waiting: 0 }) },
    } as unknown as JobService;
    const service = new BatchService(jobs, redis, config, createLogger('test', { level: 'silent' }), async (_m, v) =>
      Object(v),
    );
    while (redis.status !== 'ready') await new Promise((r) => setTimeout(r, 20));
    // The chunk is counted and staged; the connection is cut just before the commit's first write
    // (the batch's index key), and the cleanup that follows meets the same cut.
    const set = redis.set.bind(redis) as (...args: unknown[]) => Promise<unknown>;
    let wasCut = false;
    (redis as unknown as { set: (...args: unknown[]) => Promise<unknown> }).set = async (key, ...rest) => {
      if (!wasCut && String(key).startsWith(batchIndexKey(prefix, ''))) {
        wasCut = true;
        await cut(redis);
      }
      return set(key, ...rest);
    };
    const failed = await service.submit(MODEL, items(3), () => 'h', { tenant: 'tb' }).catch((err: unknown) => err);
    expect(wasCut).toBe(true);
    expect(failed).toMatchObject({ kind: 'STORE_UNAVAILABLE' });

    // Retried in the background once Redis answers again: the records, counters and inputs go.
    const deadline = Date.now() + 8000;
    while (Object.keys((await counted()).records).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await counted()).toEqual({ records: {}, usage: {} });
    expect(await admin.keys(`${prefix}:batch:*:in:*`)).toEqual([]);
    await service.close();
    redis.disconnect();
  });
});

describe('the reconciler over a chunk whose upload never committed', () => {
  const accounting = new BatchAccounting(admin, prefix, 3600);
  /** A chunk counted and staged as an upload leaves it, with or without its batch's job. */
  async function staged(batch: string, committed: boolean): Promise<string> {
    await accounting.account(
      MODEL,
      batch,
      0,
      { items: 3, bytes: 600, tenant: 'tr' },
      { maxBatchItems: 0, maxStoredBytes: 0 },
    );
    const input = batchKeys(prefix, batch).input(0);
    await admin.set(input, 'x'.repeat(600), 'EX', 3600);
    if (committed) await admin.hset(bullJobKey(prefix, bulkQueueName(MODEL), batch), 'data', '{}');
    return input;
  }

  it('releases it, and deletes its inputs, only once the upload bound has passed', async () => {
    const input = await staged('abandoned', false);
    expect(await accounting.reconcile(MODEL, 0, Date.now() + 60_000)).toBe(0);
    expect(await admin.exists(input)).toBe(1);
    expect(await accounting.reconcile(MODEL, 0, Date.now() + UPLOAD_TIMEOUT_MS + 61_000)).toBe(600);
    expect(await admin.exists(input)).toBe(0);
    expect(await counted()).toEqual({ records: {}, usage: {} });
  });

  it("never releases a committed batch's staged chunk, however old", async () => {
    const input = await staged('committed', true);
    expect(await accounting.reconcile(MODEL, 0, Date.now() + 7 * 24 * 3600_000)).toBe(0);
    expect(await admin.exists(input)).toBe(1);
    expect(await accounting.release(MODEL, 'committed', [0])).toBe(600);
    expect(await counted()).toEqual({ records: {}, usage: {} });
  });
});

describe('a coalesced predict entry whose add is cut with its Redis connection', () => {
  /** Two calls of `tenant` as one entry whose add is cut; what is left once the cleanup ran. */
  async function cutAdd(name: string, tenant: string | null, env: Record<string, string>) {
    const hub = await startHub({
      name,
      models: 'resnet50',
      workers: 0,
      // Only the cleanup may release the records here.
      env: { TENANT_RATE_RPS: '0', MODELHUB_RECONCILE_PERIOD_MS: '0', ...env },
    });
    try {
      const ctx = hub.api.ctx;
      const records = accountingKeys(hub.prefix, 'resnet50').records;
      // The newest payload (inputs in a key of their own), as with a current worker serving the model.
      const config = loadConfig({ ...process.env, REDIS_URL, MODELHUB_PREFIX: hub.prefix });
      const entries = new PredictEntries(ctx.jobs, ctx.redis, config, ctx.log, () => ENTRY_PAYLOAD_VERSION);
      const queue = entries.queues.get('resnet50')!;
      const add = queue.add.bind(queue);
      // Counted and its inputs written; the connection is cut just before the entry's add.
      queue.add = (async (...args: Parameters<typeof add>) => {
        await cut(ctx.redis as Redis);
        return add(...args);
      }) as typeof queue.add;
      const image = b64(await solidImage(32, 32, [10, 200, 30]));
      const answers = entries.submit('resnet50', [
        { tenant, input: { image } },
        { tenant, input: { image } },
      ]);
      for (const a of answers) await expect(a).rejects.toMatchObject({ kind: 'STORE_UNAVAILABLE' });

      const left = async () => ({
        records: await admin.hgetall(records),
        inputs: await admin.keys(`${hub.prefix}:{model.resnet50}.predict:inputs:*`),
        index: await admin.keys(`${hub.prefix}:entryindex:*`),
      });
      const none = JSON.stringify({ records: {}, inputs: [], index: [] });
      const deadline = Date.now() + 8000;
      while (JSON.stringify(await left()) !== none && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const waiting = (await queue.getJobCounts()).waiting;
      await Promise.all([...entries.queues.values()].map((q) => q.close()));
      return { ...(await left()), waiting };
    } finally {
      await hub.stop();
    }
  }
  const none = { records: {}, inputs: [], index: [], waiting: 0 };

  it('answers each call 503 and, once the connection is back, leaves no record, index or inputs', async () => {
    const left = await cutAdd('cutentry', 't', {
      MODELHUB_API_KEYS: 'key-tenant-t-cutentry-0001:t',
      // Counted as waiting: each call has a record from its submit.
      MODELHUB_TENANT_LIMITS: JSON.stringify({ t: { max_waiting: 10 } }),
    });
    expect(left).toEqual(none);
  }, 60_000);

  it("anonymous calls: the anonymous calls' record written at the submit goes too", async () => {
    expect(await cutAdd('cutanon', null, {})).toEqual(none);
  }, 60_000);
});
