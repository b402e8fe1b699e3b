/**
 * Coalesced predict calls through the HTTP API once their entry is indexed under one key (issue
 * 22): each call still polls, refuses a cancel and deletes as a job of its own would, for its own
 * tenant only; deleting one leaves its entry-mates readable; a call refused by its quota leaves
 * nothing behind; a worker starting an entry moves only the calls counted as waiting, and writes
 * no claim key per call; a bad call fails alone; and a call
 * indexed the previous release's way (a key of its own) is still read. Entries are sent through
 * the API's PredictEntries directly, so which calls share one never depends on timing.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictAnswer } from '../../api/predict-entries.js';
import { accountingKeys, entryIndexKey, jobClaimKey, jobIndexKey, predictQueueName } from '../../shared/redis/keys.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const MODEL = 'resnet50';
const KEY_A = 'key-tenant-a-entrycalls-01';
const KEY_B = 'key-tenant-b-entrycalls-01';
const KEY_C = 'key-tenant-c-entrycalls-01';
const ADMIN = 'key-admin-entrycalls-0001';

async function call(hub: Hub, method: string, path: string, key: string) {
  const r = await fetch(`${hub.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function usageOf(hub: Hub, tenant: string) {
  const u = await call(hub, 'GET', `/v1/usage?tenant=${tenant}`, ADMIN);
  const m = u.body.models[MODEL];
  return { waiting: m.waiting.used as number, stored: m.stored_bytes.used as number };
}

const entryOf = (id: string) => id.replace(/\.p\d+$/, '');

describe('coalesced calls indexed under their entry', () => {
  let hub: Hub;
  let image: string;
  /** The entry of three calls (a, b, a) run with its second call's image undecodable. */
  let calls: PredictAnswer[];

  beforeAll(async () => {
    image = b64(await solidImage(48, 40, [200, 40, 90]));
    hub = await startHub({
      name: 'entrycalls',
      models: MODEL,
      // No worker yet: the first test reads its entry before any worker takes it.
      workers: 0,
      env: {
        MODELHUB_API_KEYS: `${KEY_A}:a,${KEY_B}:b,${KEY_C}:c,${ADMIN}:ops:admin`,
        MODELHUB_TENANT_LIMITS: JSON.stringify({ b: { max_waiting: 0 }, c: { max_waiting: 1 } }),
        TENANT_RATE_RPS: '0',
        // The tests' own reads decide; no reconciler pass runs meanwhile.
        MODELHUB_RECONCILE_PERIOD_MS: '0',
      },
    });
  }, 60_000);
  afterAll(async () => hub?.stop());

  it('a worker starting the entry moves only the calls counted as waiting, with no claim key per call; a bad call fails alone', async () => {
    const redis = hub.api.ctx.redis;
    const lane = new Queue(predictQueueName(MODEL), { connection: redis, prefix: hub.prefix });
    // a's calls count as waiting (the default max_waiting), b's do not (none); b's image does not decode.
    const answers = hub.api.ctx.predict.entries.submit(MODEL, [
      { tenant: 'a', input: { image } },
      { tenant: 'b', input: { image: b64(Buffer.from('not an image at all')) } },
      { tenant: 'a', input: { image } },
    ]);
    await expect.poll(() => lane.getWaitingCount(), { timeout: 10_000 }).toBe(1);
    const [queued] = await lane.getWaiting();
    await lane.close();
    expect(queued.data).toMatchObject({ marks_waiting: true });
    expect(queued.data.items.map((it: { counted_waiting?: true }) => it.counted_waiting ?? false)).toEqual([
      true,
      false,
      true,
    ]);
    expect((await usageOf(hub, 'a')).waiting).toBe(2);
    await hub.addWorker();
    calls = await Promise.all(answers);

    const entryId = queued.id!;
    expect(calls.map((c) => c.view.id)).toEqual([0, 1, 2].map((k) => `${entryId}.p${k}`));
    expect(calls.map((c) => c.view.status)).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(calls[1].view.output).toMatchObject({ success: false, error_code: 1003 });
    expect(calls[0].view.output).toMatchObject({ success: true });
    expect(calls.map((c) => c.entryItems)).toEqual([3, 3, 3]);
    expect((await usageOf(hub, 'a')).waiting).toBe(0);
    for (const c of calls) expect(await redis.exists(jobClaimKey(hub.prefix, MODEL, c.view.id))).toBe(0);
    // One index key for the entry, none per call.
    expect(await redis.exists(entryIndexKey(hub.prefix, entryId))).toBe(1);
    for (const c of calls) expect(await redis.exists(jobIndexKey(hub.prefix, c.view.id))).toBe(0);
    // The failed call holds nothing: b's counts are zero.
    expect(await usageOf(hub, 'b')).toEqual({ waiting: 0, stored: 0 });
  }, 60_000);

  it("polls, refuses a cancel and deletes each call for its own tenant; another tenant's call is a 404", async () => {
    const [a0, b1, a2] = calls.map((c) => c.view.id);
    const read = await call(hub, 'GET', `/v1/jobs/${a0}`, KEY_A);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: a0, status: 'succeeded', metrics: { entry_items: 3 } });
    expect(read.body.output).toEqual(calls[0].view.output);
    expect((await call(hub, 'GET', `/v1/jobs/${b1}`, KEY_B)).body).toMatchObject({
      status: 'failed',
      output: { error_code: 1003 },
    });
    // Another tenant's call answers exactly like a missing one, whatever it asks.
    for (const [method, path] of [
      ['GET', `/v1/jobs/${a0}`],
      ['POST', `/v1/jobs/${a0}/cancel`],
      ['DELETE', `/v1/jobs/${a0}`],
    ]) {
      const other = await call(hub, method, path, KEY_B);
      const missing = await call(hub, method, path.replace(a0, `${entryOf(a0)}.p9`), KEY_B);
      expect(other.status).toBe(404);
      expect(other.body.error_code).toBe(missing.body.error_code);
    }
    expect((await call(hub, 'POST', `/v1/jobs/${a2}/cancel`, KEY_A)).status).toBe(409);

    // Deleting one call leaves its entry-mates readable.
    expect((await call(hub, 'DELETE', `/v1/jobs/${a0}`, KEY_A)).body).toEqual({ id: a0, deleted: true });
    expect((await call(hub, 'GET', `/v1/jobs/${a0}`, KEY_A)).status).toBe(404);
    expect((await call(hub, 'GET', `/v1/jobs/${a2}`, KEY_A)).body).toMatchObject({ status: 'succeeded' });
    expect((await call(hub, 'GET', `/v1/jobs/${b1}`, KEY_B)).status).toBe(200);
    const stored = await usageOf(hub, 'a');
    expect(stored.stored).toBeGreaterThan(0);

    // The last call deleted takes the entry's index key with it; every count is back to zero.
    expect((await call(hub, 'DELETE', `/v1/jobs/${a2}`, KEY_A)).status).toBe(200);
    expect((await call(hub, 'DELETE', `/v1/jobs/${b1}`, KEY_B)).status).toBe(200);
    expect((await call(hub, 'GET', `/v1/jobs/${b1}`, KEY_B)).status).toBe(404);
    expect(await hub.api.ctx.redis.exists(entryIndexKey(hub.prefix, entryOf(a0)))).toBe(0);
    expect(await usageOf(hub, 'a')).toEqual({ waiting: 0, stored: 0 });
    expect(await usageOf(hub, 'b')).toEqual({ waiting: 0, stored: 0 });
  }, 60_000);

  it('a call its quota refused leaves no record and no place in the index', async () => {
    const redis = hub.api.ctx.redis;
    // Tenant c may have one call waiting: its second call in the entry is refused, a's is not.
    const settled = await Promise.allSettled(
      hub.api.ctx.predict.entries.submit(
        MODEL,
        ['c', 'c', 'a'].map((tenant) => ({ tenant, input: { image } })),
      ),
    );
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ kind: 'TENANT_QUOTA' });
    const [c0, , a2] = settled.map((s) => (s.status === 'fulfilled' ? s.value.view.id : null));
    expect((await call(hub, 'GET', `/v1/jobs/${entryOf(c0!)}.p1`, KEY_C)).status).toBe(404);
    const index = JSON.parse((await redis.get(entryIndexKey(hub.prefix, entryOf(c0!))))!);
    expect(Object.keys(index.items).sort()).toEqual(['0', '2']);
    const records = await redis.hkeys(accountingKeys(hub.prefix, MODEL).records);
    expect(records.sort()).toEqual([c0, a2].sort());
    for (const [id, key] of [
      [c0!, KEY_C],
      [a2!, KEY_A],
    ])
      expect((await call(hub, 'DELETE', `/v1/jobs/${id}`, key)).status).toBe(200);
    expect(await usageOf(hub, 'c')).toEqual({ waiting: 0, stored: 0 });
  }, 60_000);

  it('reads a call the previous release indexed under a key of its own, for its tenant only', async () => {
    const redis = hub.api.ctx.redis;
    const answers = await Promise.all(
      hub.api.ctx.predict.entries.submit(
        MODEL,
        ['a', 'a'].map((tenant) => ({ tenant, input: { image } })),
      ),
    );
    const [p0, p1] = answers.map((a) => a.view.id);
    const entryId = entryOf(p0);
    // As the previous release indexed an entry's calls: one key per call, no entry key.
    await redis.del(entryIndexKey(hub.prefix, entryId));
    for (const id of [p0, p1])
      await redis.set(
        jobIndexKey(hub.prefix, id),
        JSON.stringify({ model: MODEL, tenant: 'a', created_at: Date.now(), deadline_at: null, entry: entryId }),
        'EX',
        600,
      );
    expect((await call(hub, 'GET', `/v1/jobs/${p0}`, KEY_A)).body).toMatchObject({ id: p0, status: 'succeeded' });
    expect((await call(hub, 'GET', `/v1/jobs/${p0}`, KEY_B)).status).toBe(404);
    expect((await call(hub, 'DELETE', `/v1/jobs/${p0}`, KEY_A)).status).toBe(200);
    expect(await redis.exists(jobIndexKey(hub.prefix, p0))).toBe(0);
    expect((await call(hub, 'GET', `/v1/jobs/${p0}`, KEY_A)).status).toBe(404);
    expect((await call(hub, 'GET', `/v1/jobs/${p1}`, KEY_A)).body).toMatchObject({ id: p1, status: 'succeeded' });
    expect((await call(hub, 'DELETE', `/v1/jobs/${p1}`, KEY_A)).status).toBe(200);
    expect(await usageOf(hub, 'a')).toEqual({ waiting: 0, stored: 0 });
  }, 60_000);
});
