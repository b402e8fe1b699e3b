/**
 * Coalesced predict (issue 22): concurrent calls for one model share one queue entry on its
 * predict lane, each keeping its own answer, error, request_id, tenant and accounting. The window
 * is long here (MODELHUB_PREDICT_COALESCE_MS=1000) and the worker held while calls are sent, so
 * which calls share an entry does not depend on timing.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predictQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, metricValue, startHub, type Hub, type WorkerProcess } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { craftedJpeg } from '../helpers/crafted-jpeg.js';
import { slowModelsDir } from '../helpers/slow-model.js';

const KEY_A = 'key-tenant-a-0123456789';
const KEY_B = 'key-tenant-b-0123456789';
const ADMIN = 'key-admin-000123456789';
const auth = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(url: string, method: string, key: string, body?: unknown) {
  const r = await fetch(url, { method, headers: auth(key), ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function usageOf(hub: Hub<WorkerProcess>, tenant: string, model: string) {
  const u = await call(`${hub.url}/v1/usage?tenant=${tenant}`, 'GET', ADMIN);
  const m = u.body.models[model];
  return { waiting: m.waiting.used as number, stored: m.stored_bytes.used as number };
}

/** Until the API has read that a worker reading entries serves `model` (its first heartbeat). */
async function untilEntriesServed(hub: Hub<WorkerProcess>, model: string): Promise<void> {
  const fleet = hub.api.ctx.predict.fleet;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
    await fleet.refresh();
    if (fleet.serves(model)) return;
  }
  throw new Error(`no worker reading entries serves ${model}`);
}

describe('coalesced predict', () => {
  let hub: Hub<WorkerProcess>;
  beforeAll(async () => {
    hub = await startHub({
      workerProcesses: true,
      name: 'coalesce',
      models: 'resnet50',
      env: {
        MODELHUB_PREDICT_COALESCE_MS: '1000',
        MODELHUB_API_KEYS: `${KEY_A}:a,${KEY_B}:b,${ADMIN}:ops:admin`,
        MAX_IMAGE_PIXELS: '100000',
      },
    });
    await untilEntriesServed(hub, 'resnet50');
  });
  afterAll(async () => hub?.stop());

  it('valid, undecodable and oversize images from two tenants in one window keep their own results and errors', async () => {
    const red = b64(await solidImage(64, 48, [230, 30, 30]));
    const blue = b64(await solidImage(64, 48, [30, 30, 230]));
    const broken = b64(craftedJpeg(0, 64, 64));
    const huge = b64(await solidImage(400, 400, [10, 200, 10]));
    const url = `${hub.url}/v1/models/resnet50/predict`;
    const worker = hub.workers[0];
    // Reference answers, one call at a time (each alone: entry_items 1).
    const refRed = await call(url, 'POST', KEY_A, { image: red });
    const refBlue = await call(url, 'POST', KEY_B, { image: blue });
    expect(refRed.status).toBe(200);
    expect(refRed.body.metrics).toEqual({ entry_items: 1 });

    worker.child.kill('SIGSTOP');
    let answers: Awaited<ReturnType<typeof call>>[];
    try {
      // The first call is in flight (the worker is held), so the next ones wait in the window.
      const first = call(url, 'POST', KEY_A, { image: red });
      await sleep(200);
      const plan: [string, string][] = [
        [KEY_A, red],
        [KEY_B, broken],
        [KEY_B, blue],
        [KEY_A, huge],
        [KEY_A, broken],
        [KEY_B, red],
        [KEY_B, huge],
      ];
      const rest = plan.map(([key, image]) => call(url, 'POST', key, { image }));
      // The window (1 s) closes and the entry is queued while the worker is still held.
      await sleep(1500);
      worker.child.kill('SIGCONT');
      answers = await Promise.all([first, ...rest]);
    } finally {
      worker.child.kill('SIGCONT');
    }
    const [first, aRed, bBroken, bBlue, aHuge, aBroken, bRed, bHuge] = answers;
    expect(first.status).toBe(200);
    expect(first.body.metrics.entry_items).toBe(1);
    // The five calls that passed intake shared one entry; the oversize ones never joined (413).
    for (const a of [aRed, bBlue, bRed]) {
      expect(a.status).toBe(200);
      expect(a.body.metrics).toEqual({ entry_items: 5 });
      expect(a.body.success).toBe(true);
    }
    const strip = (b: any) => {
      const { request_id: _r, metrics: _m, ...rest } = b;
      return rest;
    };
    expect(strip(aRed.body)).toEqual(strip(refRed.body));
    expect(strip(bRed.body)).toEqual(strip(refRed.body));
    expect(strip(bBlue.body)).toEqual(strip(refBlue.body));
    for (const a of [bBroken, aBroken]) {
      expect(a.status).toBe(400);
      expect(a.body).toMatchObject({ success: false });
      expect(typeof a.body.request_id).toBe('string');
    }
    for (const a of [aHuge, bHuge]) expect(a.status).toBe(413);
    // Each call has its own id; the same entry's ids differ only by their place.
    const ids = [aRed, bBroken, bBlue, aBroken, bRed].map((a) => a.body.request_id as string);
    expect(new Set(ids).size).toBe(5);
    expect(new Set(ids.map((id) => id.replace(/\.p\d+$/, ''))).size).toBe(1);

    // Each reads back as its own job, for its own tenant only.
    const readA = await call(`${hub.url}/v1/jobs/${aRed.body.request_id}`, 'GET', KEY_A);
    expect(readA.status).toBe(200);
    expect(readA.body).toMatchObject({ status: 'succeeded', metrics: { entry_items: 5 } });
    expect(readA.body.output).toEqual({ ...strip(aRed.body), request_id: aRed.body.request_id });
    expect((await call(`${hub.url}/v1/jobs/${aRed.body.request_id}`, 'GET', KEY_B)).status).toBe(404);
    const readBroken = await call(`${hub.url}/v1/jobs/${bBroken.body.request_id}`, 'GET', KEY_B);
    expect(readBroken.body).toMatchObject({ status: 'failed', output: { error_code: bBroken.body.error_code } });
    // A predict call cannot be canceled.
    expect((await call(`${hub.url}/v1/jobs/${bRed.body.request_id}/cancel`, 'POST', KEY_B)).status).toBe(409);

    // Accounting: each tenant holds exactly its own results; deleting them gives all back.
    const resultBytes = async (id: string) => {
      const q = new Queue(predictQueueName('resnet50'), { connection: { url: REDIS_URL }, prefix: hub.prefix });
      const entry = await q.getJob(id.replace(/\.p\d+$/, ''));
      await q.close();
      const own = entry!.returnvalue.items.find((it: any) => it.id === id);
      return 'error' in own ? 0 : JSON.stringify(own).length;
    };
    const ownA = (await resultBytes(aRed.body.request_id)) + (await resultBytes(aBroken.body.request_id));
    const ownB =
      (await resultBytes(bBlue.body.request_id)) +
      (await resultBytes(bRed.body.request_id)) +
      (await resultBytes(bBroken.body.request_id));
    expect(ownA).toBeGreaterThan(0);
    // Jobs of their own (the reference and first calls) hold their results too: delete them first.
    for (const [key, id] of [
      [KEY_A, refRed.body.request_id],
      [KEY_B, refBlue.body.request_id],
      [KEY_A, first.body.request_id],
    ])
      expect((await call(`${hub.url}/v1/jobs/${id}`, 'DELETE', key)).status).toBe(200);
    expect(await usageOf(hub, 'a', 'resnet50')).toEqual({ waiting: 0, stored: ownA });
    expect(await usageOf(hub, 'b', 'resnet50')).toEqual({ waiting: 0, stored: ownB });
    for (const a of [aRed, aBroken])
      expect((await call(`${hub.url}/v1/jobs/${a.body.request_id}`, 'DELETE', KEY_A)).status).toBe(200);
    for (const a of [bBlue, bRed, bBroken])
      expect((await call(`${hub.url}/v1/jobs/${a.body.request_id}`, 'DELETE', KEY_B)).status).toBe(200);
    expect((await call(`${hub.url}/v1/jobs/${aRed.body.request_id}`, 'GET', KEY_A)).status).toBe(404);
    expect(await usageOf(hub, 'a', 'resnet50')).toEqual({ waiting: 0, stored: 0 });
    expect(await usageOf(hub, 'b', 'resnet50')).toEqual({ waiting: 0, stored: 0 });
    // The reconciler agrees: nothing to give back or finish.
    await hub.api.reconciler.reconcileAll();
    expect(await usageOf(hub, 'a', 'resnet50')).toEqual({ waiting: 0, stored: 0 });

    // The entry-size histogram: three calls alone, one entry of five.
    const page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    expect(metricValue(page, 'modelhub_predict_entry_items_count', { model: 'resnet50' })).toBe(4);
    expect(metricValue(page, 'modelhub_predict_entry_items_sum', { model: 'resnet50' })).toBe(8);
  }, 60_000);
});

describe('a worker SIGKILLed while it holds a coalesced entry', () => {
  let hub: Hub<WorkerProcess>;
  beforeAll(async () => {
    hub = await startHub({
      workerProcesses: true,
      name: 'coalesce-kill',
      models: 'slow',
      env: {
        MODELHUB_MODELS_DIR: slowModelsDir({ layers: 12, maxBatchSize: 4 }),
        MODELHUB_PREDICT_COALESCE_MS: '1000',
        MODELHUB_API_KEYS: `${KEY_A}:a,${KEY_B}:b,${ADMIN}:ops:admin`,
        MODELHUB_LOCK_MS: '2000',
        MODELHUB_STALLED_INTERVAL_MS: '500',
      },
    });
    await untilEntriesServed(hub, 'slow');
  });
  afterAll(async () => hub?.stop());

  it('every waiting call is answered once, by the retried entry, and counted once', async () => {
    const images = await Promise.all([1, 2, 3, 4].map((k) => solidImage(40, 40, [k * 60, 20, 200 - k * 40])));
    const url = `${hub.url}/v1/models/slow/predict`;
    const victim = hub.workers[0];
    const lane = new Queue(predictQueueName('slow'), { connection: { url: REDIS_URL }, prefix: hub.prefix });
    let answers: Promise<Awaited<ReturnType<typeof call>>>[];
    victim.child.kill('SIGSTOP');
    try {
      const first = call(url, 'POST', KEY_A, { image: b64(images[0]) });
      await sleep(200);
      // Four calls fill one entry (max_batch_size 4), two tenants.
      const rest = images.map((img, k) => call(url, 'POST', k % 2 ? KEY_B : KEY_A, { image: b64(img) }));
      answers = [first, ...rest];
      await expect.poll(() => lane.getWaitingCount(), { timeout: 10_000 }).toBe(1);
    } finally {
      victim.child.kill('SIGCONT');
    }
    // The worker takes the entry, and dies holding it.
    await expect.poll(() => lane.getActiveCount(), { timeout: 20_000, interval: 20 }).toBe(1);
    victim.child.kill('SIGKILL');
    await hub.addWorker();
    const settled = await Promise.all(answers);
    for (const a of settled) {
      expect(a.status).toBe(200);
      expect(a.body.success).toBe(true);
    }
    expect(settled.slice(1).map((a) => a.body.metrics.entry_items)).toEqual([4, 4, 4, 4]);
    // The entry ran again and finished once: one run is recorded, its items each counted once.
    const entry = await lane.getJob((settled[1].body.request_id as string).replace(/\.p\d+$/, ''));
    expect(await entry!.getState()).toBe('completed');
    let ownA = 0;
    let ownB = 0;
    for (const [k, a] of settled.slice(1).entries()) {
      const own = entry!.returnvalue.items.find((it: any) => it.id === a.body.request_id);
      if (k % 2) ownB += JSON.stringify(own).length;
      else ownA += JSON.stringify(own).length;
    }
    await lane.close();
    // The new worker counted the entry's four items (and the first call, if it ran it too).
    const rescuer = entry!.returnvalue.metrics.worker;
    const single = await hub.api.ctx.redis.hget(
      `${hub.prefix}:{model.slow}:${settled[0].body.request_id}`,
      'returnvalue',
    );
    const singleThere = JSON.parse(single!).metrics.worker === rescuer ? 1 : 0;
    expect((await call(`${hub.url}/v1/jobs/${settled[0].body.request_id}`, 'DELETE', KEY_A)).status).toBe(200);
    expect(await usageOf(hub, 'a', 'slow')).toEqual({ waiting: 0, stored: ownA });
    expect(await usageOf(hub, 'b', 'slow')).toEqual({ waiting: 0, stored: ownB });
    const page = await (await fetch(`${hub.workers[1].metricsUrl}/metrics`)).text();
    expect(metricValue(page, 'modelhub_worker_jobs_total', { model: 'slow', outcome: 'succeeded' })).toBe(
      4 + singleThere,
    );
  }, 120_000);
});
