/**
 * What a model keeps and what a tenant holds in Redis: retention bounded by bytes as well as by
 * age and count, and a per-tenant stored-bytes quota (inputs waiting + results kept) that a
 * cancel, a finish or a DELETE gives back.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobAccounting } from '../../shared/jobs/accounting.js';
import { accountingKeys } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, startHub, testPrefix, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const retention = { JOB_RETENTION_S: 3600, JOB_RETENTION_COUNT: 100, JOB_RETENTION_BYTES: 1000 };

describe('the finish script (finish-job.lua)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = testPrefix('retained');
  const accountingWith = (bounds: typeof retention) =>
    new JobAccounting(redis, prefix, { ttlS: 7200, retention: bounds });
  const accounting = accountingWith(retention);
  afterAll(async () => {
    await deletePrefix(prefix);
    redis.disconnect();
  });

  /**
   * A job submitted (its input counted, as the API does), run, and finished as BullMQ leaves it
   * (its data with input, a result of `resultBytes`, its member of the completed set), then
   * recorded by the finish script.
   */
  async function finished(
    id: string,
    tenant: string | null,
    resultBytes: number,
    inputBytes: number,
    at: number,
    bounds = retention,
  ): Promise<string[]> {
    const key = jobKey(id);
    await accounting.submit('m', id, tenant, { countWaiting: false, inputBytes }, { maxWaiting: 0, maxStoredBytes: 0 });
    await accounting.claimForRun('m', id);
    await redis.hset(
      key,
      'data',
      JSON.stringify({ model: 'm', input: { text: 'x'.repeat(inputBytes) }, tenant }),
      'returnvalue',
      'r'.repeat(resultBytes),
    );
    await redis.zadd(completedSet, at, id);
    return accountingWith(bounds).finish(
      'm',
      { id, tenant, dataWithoutInput: JSON.stringify({ model: 'm', input: {}, tenant, input_dropped: true }) },
      at,
    );
  }
  const jobKey = (id: string) => `${prefix}:{model.m}:${id}`;
  const completedSet = `${prefix}:{model.m}:completed`;
  /** Whether BullMQ still holds the job: its hash, or its member of the completed set. */
  const held = async (id: string) =>
    (await redis.exists(jobKey(id))) === 1 || (await redis.zscore(completedSet, id)) !== null;
  const stored = async (tenant: string) => (await accounting.usage('m', tenant)).storedBytes;
  const keys = accountingKeys(prefix, 'm');
  const retainedBytes = () => accounting.retainedBytes('m');
  /** Ids of the retained results, oldest first. */
  const kept = async () => (await redis.zrange(keys.retained, 0, -1)).map((member) => member.split('|')[0]);

  it("swaps a job's counted input for its result, and pushes the oldest results out past the byte bound", async () => {
    // Inputs counted at submit (as the API does); a second submit of the same job counts nothing.
    for (const id of ['j1', 'j2', 'j3'])
      await accounting.submit(
        'm',
        id,
        'a',
        { countWaiting: false, inputBytes: 500 },
        { maxWaiting: 0, maxStoredBytes: 0 },
      );
    expect(await finished('j1', 'a', 400, 500, 1_000)).toEqual([]);
    expect(await stored('a')).toBe(1000 + 400);
    expect(await finished('j2', 'a', 400, 500, 2_000)).toEqual([]);
    expect(await retainedBytes()).toBe(800);
    // 1200 > 1000: j1 (the oldest) is pushed out, and only it; its bytes leave both counts.
    expect(await finished('j3', 'a', 400, 500, 3_000)).toEqual(['j1']);
    expect(await retainedBytes()).toBe(800);
    expect(await stored('a')).toBe(800);
    expect(await kept()).toEqual(['j2', 'j3']);
    // j1 left BullMQ in the same script (its hash and its completed member), and its record with it.
    expect(await held('j1')).toBe(false);
    expect(await redis.hexists(keys.records, 'j1')).toBe(0);
    expect(await held('j2')).toBe(true);
    // The job's input is gone from its hash; its result stays.
    expect(JSON.parse((await redis.hget(`${prefix}:{model.m}:j3`, 'data'))!)).toMatchObject({
      input: {},
      input_dropped: true,
    });
    expect(await redis.hstrlen(`${prefix}:{model.m}:j3`, 'returnvalue')).toBe(400);
  });

  it('removes the jobs past the age and count bounds as BullMQ would, and never pushes out the job just finished', async () => {
    // j2 (finished at 2 000) is older than the hour: it leaves the counts and BullMQ at once (not
    // on the reconciler's next pass, nor when BullMQ's own bound next runs on this queue).
    expect(await finished('j4', null, 100, 0, 2_000 + 3600_000 + 1)).toEqual([]);
    expect(await kept()).toEqual(['j3', 'j4']);
    expect(await stored('a')).toBe(400);
    expect(await held('j2')).toBe(false);
    // Count bound 1: j3 leaves, not pushed out by bytes.
    expect(await finished('j5', null, 100, 0, 2_000 + 3600_000 + 2, { ...retention, JOB_RETENTION_COUNT: 2 })).toEqual(
      [],
    );
    expect(await kept()).toEqual(['j4', 'j5']);
    expect(await stored('a')).toBe(0);
    expect(await held('j3')).toBe(false);
    expect(await redis.hlen(keys.records)).toBe(2);
    // A single result over the byte bound stays (its size passed MAX_RESULT_BYTES); the older ones go.
    expect(await finished('j6', null, 5000, 0, 2_000 + 3600_000 + 3)).toEqual(['j4', 'j5']);
    expect(await kept()).toEqual(['j6']);
    expect(await retainedBytes()).toBe(5000);
  });

  it('leaves a pushed-out job that is not in the completed set at x, for the reconciler', async () => {
    // Never a finished record's case (a failed job keeps no result): the script removes only
    // what BullMQ's own count bound would, and the record keeps nothing counted meanwhile.
    await redis.zrem(completedSet, 'j6');
    expect(await finished('j6b', null, 10, 0, 2_000 + 3600_000 + 4, { ...retention, JOB_RETENTION_COUNT: 1 })).toEqual(
      [],
    );
    expect(await redis.exists(jobKey('j6'))).toBe(1);
    expect((await redis.hget(keys.records, 'j6'))?.[0]).toBe('x');
    expect(await kept()).toEqual(['j6b']);
    expect(await retainedBytes()).toBe(10);
  });

  it('drops a retained entry it cannot read instead of failing every later finish', async () => {
    await redis.zadd(keys.retained, 0, 'not-a-member-this-script-wrote');
    await expect(finished('j7', null, 10, 0, 2_000 + 3600_000 + 5)).resolves.toEqual([]);
    expect(await kept()).toEqual(['j6b', 'j7']);
  });

  it('keeps the job just finished when an older result finished in the same millisecond sorts after it', async () => {
    const t = 2_000 + 3600_000 + 6;
    const countOf1 = { ...retention, JOB_RETENTION_COUNT: 1 };
    expect(await finished('j8b', null, 10, 0, t, countOf1)).toEqual([]);
    expect(await kept()).toEqual(['j8b']);
    // Equal scores order by member: j8a, just finished, is the head. The count bound stops there
    // (the set is one over until the next finish) rather than pushing out the result it just counted.
    expect(await finished('j8a', null, 10, 0, t, countOf1)).toEqual([]);
    expect(await kept()).toEqual(['j8a', 'j8b']);
    expect(await held('j8a')).toBe(true);
    expect((await redis.hget(keys.records, 'j8a'))?.[0]).toBe('r');
    expect(await finished('j9', null, 10, 0, t + 1, countOf1)).toEqual([]);
    expect(await kept()).toEqual(['j9']);
    expect([await held('j8a'), await held('j8b')]).toEqual([false, false]);
  });

  it("gives a deleted job's bytes back, and a canceled job's input once only", async () => {
    await finished('k1', 'b', 250, 300, 10_000_000);
    expect(await stored('b')).toBe(250);
    // DELETE: the job goes, then what its record held.
    await redis.del(`${prefix}:{model.m}:k1`);
    expect(await accounting.release('m', 'k1')).toBe(250);
    expect(await accounting.release('m', 'k1')).toBe(0);
    expect(await stored('b')).toBe(0);
    // Canceled while queued: the cancel gives the input back; the worker that then fails the
    // job unrun (its claim says canceled) must not give it back again.
    await accounting.submit(
      'm',
      'k2',
      'b',
      { countWaiting: true, inputBytes: 300 },
      { maxWaiting: 0, maxStoredBytes: 0 },
    );
    await accounting.submit(
      'm',
      'k3',
      'b',
      { countWaiting: true, inputBytes: 300 },
      { maxWaiting: 0, maxStoredBytes: 0 },
    );
    const key = `${prefix}:{model.m}:k2`;
    await redis.hset(key, 'data', '{}', 'timestamp', 1);
    expect(await accounting.claimForCancel('m', 'k2')).toBe('canceled');
    expect(await stored('b')).toBe(300);
    await redis.hset(key, 'failedReason', 'canceled', 'finishedOn', 2);
    await accounting.finish('m', { id: 'k2', tenant: 'b', dataWithoutInput: '{}' }, 10_000_001);
    expect(await stored('b')).toBe(300);
    expect(await accounting.usage('m', 'b')).toEqual({ waiting: 1, storedBytes: 300 });
  });
});

describe('through the hub', () => {
  const ALICE = 'alice-key-stored-bytes';
  const BOB = 'bob-key-stored-bytes-0';
  const as = (key: string) => ({ Authorization: `Bearer ${key}`, 'content-type': 'application/json' });
  let hub: Hub;
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(120, 90, [200, 10, 10]));
    hub = await startHub({
      name: 'stored',
      models: 'text-direction',
      workers: 0,
      env: {
        MODELHUB_API_KEYS: `${ALICE}:alice,${BOB}:bob`,
        // Two of these inputs fit; the third waits for one to leave.
        TENANT_MAX_STORED_BYTES: String(Math.floor(image.length * 2.5)),
        JOB_RETENTION_BYTES: '600',
        TENANT_RATE_RPS: '0',
      },
    });
  });
  afterAll(async () => hub?.stop());
  const submit = async (key: string) => {
    const r = await fetch(`${hub.url}/v1/models/text-direction/jobs`, {
      method: 'POST',
      headers: as(key),
      body: JSON.stringify({ input: { image } }),
    });
    return { status: r.status, body: (await r.json()) as any };
  };
  const get = async (key: string, id: string) => {
    const r = await fetch(`${hub.url}/v1/jobs/${id}`, { headers: as(key) });
    return { status: r.status, body: (await r.json()) as any };
  };

  it('refuses a tenant past its stored bytes (429, 1402) while another tenant is served; a cancel gives the bytes back', async () => {
    const first = [await submit(ALICE), await submit(ALICE), await submit(ALICE)];
    expect(first.map((r) => r.status)).toEqual([202, 202, 202]);
    const over = await submit(ALICE);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ success: false, error_code: 1402 });
    expect(over.body.error_msg).toMatch(/bytes of inputs and results/);
    expect((await submit(BOB)).status).toBe(202);
    await fetch(`${hub.url}/v1/jobs/${first[0].body.id}/cancel`, { method: 'POST', headers: as(ALICE) });
    expect((await submit(ALICE)).status).toBe(202);
    expect((await submit(ALICE)).status).toBe(429);
  });

  it('once jobs finish their inputs leave the count, and results past JOB_RETENTION_BYTES are removed oldest first', async () => {
    await hub.addWorker();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await submit(BOB);
      expect(r.status).toBe(202);
      ids.push(r.body.id);
      // One at a time, so they finish in order.
      for (let t = 0; t < 400 && ['queued', 'running'].includes((await get(BOB, r.body.id)).body.status); t++)
        await new Promise((res) => setTimeout(res, 25));
    }
    const redis = hub.api.ctx.redis;
    const keys = accountingKeys(hub.prefix, 'text-direction');
    // The finish script runs just after completion: let the last one land.
    const lastKept = async () => (await redis.zrange(keys.retained, -1, -1))[0]?.startsWith(ids[5]);
    for (let t = 0; t < 100 && !(await lastKept()); t++) await new Promise((res) => setTimeout(res, 25));
    const kept = (await redis.zrange(keys.retained, 0, -1)).map((member) => member.split('|')[0]);
    const bytes = await hub.api.ctx.jobs.accounting.retainedBytes('text-direction');
    // Each result is a couple of hundred bytes: the bound keeps the newest few, never more than 600 bytes' worth beyond the newest.
    expect(kept.at(-1)).toBe(ids[5]);
    expect(kept.length).toBeLessThan(6);
    expect(bytes).toBeLessThanOrEqual(600);
    expect((await get(BOB, ids[5])).body.status).toBe('succeeded');
    // The oldest are gone from BullMQ too (removed by the worker, not only uncounted).
    for (let t = 0; t < 100 && (await get(BOB, ids[0])).status !== 404; t++)
      await new Promise((res) => setTimeout(res, 25));
    expect((await get(BOB, ids[0])).body).toMatchObject({ success: false, error_code: 1202 });
    // Bob's stored bytes are what is kept of his results, not his inputs any more (Alice's
    // queued jobs ran too once the worker came: theirs are hers).
    const entries = (await redis.zrange(keys.retained, 0, -1)).map((member) => member.split('|'));
    const bobs = entries.filter(([, , owner]) => owner === 'bob').reduce((sum, [, n]) => sum + Number(n), 0);
    expect(bobs).toBeGreaterThan(0);
    expect((await hub.api.ctx.jobs.accounting.usage('text-direction', 'bob')).storedBytes).toBe(bobs);
  });
});
