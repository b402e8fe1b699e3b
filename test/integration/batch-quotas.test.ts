/**
 * Batch uploads inside the tenant's quotas (issue 28): each staged chunk is counted in its
 * tenant's stored bytes (shared with its jobs) and batch items in flight, released exactly once
 * when the chunk finishes, the batch is canceled, the upload fails, or its staged inputs expire.
 * A tenant at a quota gets 429, 1402, Retry-After; others are untouched. Counts come back to zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { storeChunkResults } from '../../shared/redis/batch-chunks.js';
import { unranLines } from '../../shared/batches/view.js';
import { SpecError } from '../../shared/errors.js';
import { batchKeys } from '../../shared/redis/keys.js';

const KEYS = { a: 'quota-a-key-0123456789', b: 'quota-b-key-0123456789', c: 'quota-c-key-0123456789' };
const D = 'quota-d-key-0123456789';
const STORED_LIMIT = 12_000;

let hub: Hub;
let image: string;
beforeAll(async () => {
  image = b64(await solidImage(48, 48, [200, 10, 10]));
  hub = await startHub({
    name: 'batch-quotas',
    workers: 0,
    models: 'resnet50',
    env: {
      MODELHUB_API_KEYS: `${KEYS.a}:a,${KEYS.b}:b,${KEYS.c}:c,${D}:d`,
      TENANT_MAX_STORED_BYTES: String(STORED_LIMIT),
      TENANT_RATE_RPS: '0',
      TENANT_RATE_BYTES_PER_S: '0',
      BATCH_CHUNK_SIZE: '4',
      MODELHUB_TENANT_LIMITS: JSON.stringify({ c: { max_batch_items: 10 } }),
      MODELHUB_RECONCILE_PERIOD_MS: '0',
    },
  });
}, 60_000);
afterAll(async () => hub?.stop());

async function call(key: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${hub.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}
const usage = async (key: string) => (await call(key, 'GET', '/v1/usage')).body.models.resnet50;
const batchOf = (n: number) => ({ inputs: Array.from({ length: n }, () => ({ image })) });

async function settled(key: string, id: string): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const v = (await call(key, 'GET', `/v1/batches/${id}`)).body;
    if (v.status !== 'queued' && v.status !== 'running') return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} did not settle`);
}

describe('batches and the tenant quotas', () => {
  it('counts batch inputs in stored bytes: A is refused at its quota (429, 1402), B is untouched', async () => {
    const aBatches: string[] = [];
    let refused: Awaited<ReturnType<typeof call>> | null = null;
    for (let i = 0; i < 20 && !refused; i++) {
      const r = await call(KEYS.a, 'POST', '/v1/models/resnet50/batches', batchOf(8));
      if (r.status === 202) aBatches.push(r.body.id);
      else refused = r;
    }
    expect(refused).toMatchObject({ status: 429, body: { success: false, error_code: 1402 } });
    expect(refused!.headers.get('retry-after')).toBe('30');
    expect(aBatches.length).toBeGreaterThan(0);
    const a = await usage(KEYS.a);
    expect(a.stored_bytes.used).toBeGreaterThanOrEqual(STORED_LIMIT);
    expect(a).toMatchObject({
      waiting: { used: 0 },
      batches_in_flight: aBatches.length,
      batch_items: { used: aBatches.length * 8 },
      batch_stored_bytes: a.stored_bytes.used,
    });
    // A's job is refused by the same quota.
    expect(await call(KEYS.a, 'POST', '/v1/models/resnet50/jobs', { input: { image } })).toMatchObject({
      status: 429,
      body: { error_code: 1402 },
    });

    // B: its job and its batch are accepted and, once a worker serves the model, succeed.
    const job = await call(KEYS.b, 'POST', '/v1/models/resnet50/jobs', { input: { image } });
    const batch = await call(KEYS.b, 'POST', '/v1/models/resnet50/batches', batchOf(6));
    expect([job.status, batch.status]).toEqual([202, 202]);
    await hub.addWorker();
    expect((await settled(KEYS.b, batch.body.id)).counts).toMatchObject({ total: 6, succeeded: 6 });
    for (const id of aBatches) expect((await settled(KEYS.a, id)).counts).toMatchObject({ succeeded: 8 });
    for (let i = 0; i < 300; i++) {
      if ((await call(KEYS.b, 'GET', `/v1/jobs/${job.body.id}`)).body.status === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Items finished: their inputs are given back. What is left is B's job result, until deleted.
    expect(await usage(KEYS.a)).toMatchObject({
      stored_bytes: { used: 0 },
      batches_in_flight: 0,
      batch_items: { used: 0 },
      batch_stored_bytes: 0,
    });
    expect(await call(KEYS.b, 'DELETE', `/v1/jobs/${job.body.id}`)).toMatchObject({ status: 200 });
    for (const key of [KEYS.a, KEYS.b])
      expect(await usage(key)).toMatchObject({
        waiting: { used: 0 },
        stored_bytes: { used: 0 },
        batches_in_flight: 0,
        batch_items: { used: 0 },
        batch_stored_bytes: 0,
      });
    await hub.workers[0].stop('SIGKILL');
    hub.workers.length = 0;
  }, 240_000);

  it('holds batch items in flight to TENANT_MAX_BATCH_ITEMS; a cancel gives them back', async () => {
    const first = await call(KEYS.c, 'POST', '/v1/models/resnet50/batches', batchOf(8));
    expect(first.status).toBe(202);
    expect(await usage(KEYS.c)).toMatchObject({ batches_in_flight: 1, batch_items: { used: 8, limit: 10 } });
    // The next upload passes the limit at its first chunk: refused, and what it staged is given back.
    const second = await call(KEYS.c, 'POST', '/v1/models/resnet50/batches', batchOf(8));
    expect(second).toMatchObject({
      status: 429,
      body: { success: false, error_code: 1402, error_msg: /TENANT_MAX_BATCH_ITEMS/ },
    });
    expect(await usage(KEYS.c)).toMatchObject({ batches_in_flight: 1, batch_items: { used: 8 } });
    // Once at the limit, refused before the upload is read.
    const third = await call(KEYS.c, 'POST', '/v1/models/resnet50/batches', batchOf(2));
    expect(third.status).toBe(202);
    expect((await call(KEYS.c, 'POST', '/v1/models/resnet50/batches', batchOf(1))).status).toBe(429);
    for (const id of [first.body.id, third.body.id])
      expect((await call(KEYS.c, 'POST', `/v1/batches/${id}/cancel`)).status).toBe(200);
    expect(await usage(KEYS.c)).toMatchObject({
      stored_bytes: { used: 0 },
      batches_in_flight: 0,
      batch_items: { used: 0 },
      batch_stored_bytes: 0,
    });
  }, 60_000);

  it('a worker finishing a chunk racing a cancel: each chunk released once, counts exactly zero', async () => {
    const { batches } = hub.api.ctx;
    const redis = hub.api.ctx.redis;
    const lines = (id: string, first: number) =>
      unranLines(id, first, 4, 'failed', new SpecError('INFERENCE_FAILED', 'forced'));
    // Order 1: the worker stores chunk 0's results, the cancel runs whole, then the worker releases.
    const one = await call(D, 'POST', '/v1/models/resnet50/batches', batchOf(8));
    const ref0 = { model: 'resnet50', batch: one.body.id, chunk: 0, count: 4, chunks: 2 };
    expect(await storeChunkResults(redis, hub.prefix, ref0, lines(one.body.id, 0), 3600)).toBe(true);
    expect((await call(D, 'POST', `/v1/batches/${one.body.id}/cancel`)).status).toBe(200);
    // The cancel released chunk 1 (unstarted); chunk 0 is still counted until its worker releases it.
    expect(await usage(D)).toMatchObject({ batches_in_flight: 1, batch_items: { used: 4 } });
    await batches.accounting.release('resnet50', one.body.id, [0]);
    await batches.accounting.release('resnet50', one.body.id, [0]); // a resent release: a no-op
    expect(await usage(D)).toMatchObject({ stored_bytes: { used: 0 }, batches_in_flight: 0, batch_items: { used: 0 } });

    // Order 2: the cancel finishes chunk 1 first; the worker's finish of the same chunk comes after.
    const two = await call(D, 'POST', '/v1/models/resnet50/batches', batchOf(8));
    const ref1 = { model: 'resnet50', batch: two.body.id, chunk: 1, count: 4, chunks: 2 };
    expect((await call(D, 'POST', `/v1/batches/${two.body.id}/cancel`)).status).toBe(200);
    expect(await storeChunkResults(redis, hub.prefix, ref1, lines(two.body.id, 4), 3600)).toBe(false);
    await batches.accounting.release('resnet50', two.body.id, [1]);
    expect(await usage(D)).toMatchObject({ stored_bytes: { used: 0 }, batches_in_flight: 0, batch_items: { used: 0 } });

    // Order 3: the worker stores chunk 0 and dies before releasing; the reconciler gives it back
    // (its staged inputs are gone), and never a chunk whose inputs are still staged.
    const three = await call(D, 'POST', '/v1/models/resnet50/batches', batchOf(8));
    const ref3 = { model: 'resnet50', batch: three.body.id, chunk: 0, count: 4, chunks: 2 };
    await storeChunkResults(redis, hub.prefix, ref3, lines(three.body.id, 0), 3600);
    expect(await redis.exists(batchKeys(hub.prefix, three.body.id).input(1))).toBe(1);
    await batches.accounting.reconcile('resnet50', 0);
    expect(await usage(D)).toMatchObject({ batches_in_flight: 1, batch_items: { used: 4 } });
    expect((await call(D, 'POST', `/v1/batches/${three.body.id}/cancel`)).status).toBe(200);
    expect(await usage(D)).toMatchObject({
      waiting: { used: 0 },
      stored_bytes: { used: 0 },
      batches_in_flight: 0,
      batch_items: { used: 0 },
      batch_stored_bytes: 0,
    });
  }, 60_000);
});
