/**
 * Upgrades do not lose work: jobs queued by the previous release (0.1.0) — its payload shape
 * (no version field), its key names and job options, written here literally rather than through
 * today's helpers — are found, run and canceled by the current API and worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { predictQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { b64, solidImage } from '../helpers/images.js';

/** Exactly what 0.1.0's API did on submit (api/job-service.ts at d217431). */
async function enqueueAsPreviousRelease(redis: Redis, prefix: string, model: string, input: Record<string, unknown>) {
  const queue = new Queue(`{model.${model}}`, {
    connection: redis,
    prefix,
    defaultJobOptions: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: 86400, count: 10_000 },
      removeOnFail: { age: 86400, count: 10_000 },
    },
  });
  const id = randomUUID();
  const now = Date.now();
  await redis.set(
    `${prefix}:jobindex:${id}`,
    JSON.stringify({ model, tenant: null, created_at: now }),
    'EX',
    86400 + 3600,
  );
  await queue.add(
    'infer',
    { model, input, tenant: null, deadline_at: now + 600_000 },
    { jobId: id, timestamp: now, priority: 5 },
  );
  await queue.close();
  return id;
}

describe('jobs queued by the previous release', () => {
  let hub: Hub;
  const redis = new Redis(REDIS_URL);
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(40, 30, [10, 120, 230]));
    hub = await startHub({ name: 'upgrade', models: 'resnet50', workers: 0 });
  });
  afterAll(async () => {
    await hub?.stop();
    redis.disconnect();
  });

  it('are found while queued, canceled through the new API, and run to the same result as new jobs', async () => {
    const oldJob = await enqueueAsPreviousRelease(redis, hub.prefix, 'resnet50', { image });
    const oldCanceled = await enqueueAsPreviousRelease(redis, hub.prefix, 'resnet50', { image });
    expect((await getJson(`${hub.url}/v1/jobs/${oldJob}`)).body).toMatchObject({
      id: oldJob,
      model: 'resnet50',
      status: 'queued',
    });
    const cancel = await postJson(`${hub.url}/v1/jobs/${oldCanceled}/cancel`, {});
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('canceled');

    const fresh = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
    expect(fresh.status).toBe(202);
    await hub.addWorker();

    const done = await pollJob(hub.url, oldJob);
    const reference = await pollJob(hub.url, fresh.body.id);
    expect(done.status).toBe('succeeded');
    expect(done.output).toMatchObject({ success: true, error_code: 0, request_id: oldJob });
    expect(done.output.class).toBe(reference.output.class);
    expect(done.output.class_name).toBe(reference.output.class_name);
    expect((await getJson(`${hub.url}/v1/jobs/${oldCanceled}`)).body.status).toBe('canceled');
  });
});

describe('a mixed fleet: a worker of the previous release beside a current one', () => {
  const KEY = 'tenant-key-mixed-fleet-0';
  const MODEL = 'text-direction';
  const headers = { Authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  let hub: Hub;
  let previous: ChildProcess;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    hub = await startHub({
      name: 'mixed',
      models: MODEL,
      workers: 0,
      env: {
        MODELHUB_API_KEYS: `${KEY}:t`,
        TENANT_RATE_RPS: '0',
        WEBHOOK_SECRET: 'whsec_' + Buffer.from('mixed fleet test secret, 32 byte').toString('base64'),
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        MODELHUB_RECONCILE_PERIOD_MS: '0',
        // Long enough that concurrent predicts surely share entries (timing never decides a result).
        MODELHUB_PREDICT_COALESCE_MS: '200',
      },
    });
    previous = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test/fixtures/previous-release/worker.ts'), MODEL],
      { env: { ...process.env, ...hub.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      previous.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      previous.once('exit', (code) => reject(new Error(`the previous-release worker exited (${code})`)));
    });
  });
  afterAll(async () => {
    previous?.kill('SIGKILL');
    await receiver?.close();
    await hub?.stop();
  });

  const call = async (method: string, url: string, body?: unknown) => {
    const r = await fetch(`${hub.url}${url}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: r.status, body: (await r.json()) as any };
  };

  const predictWave = async (n: number) => {
    const images = await Promise.all(
      [1, 2, 3, 4].map(async (k) => b64(await solidImage(30 + k, 20 + k, [k * 50, 90, 9]))),
    );
    return Promise.all(
      Array.from({ length: n }, (_, i) => call('POST', `/v1/models/${MODEL}/predict`, { image: images[i % 4] })),
    );
  };

  it('with only the previous release serving, concurrent predicts are not coalesced (nothing could run an entry) and all answer', async () => {
    await hub.api.ctx.predict.fleet.refresh();
    expect(hub.api.ctx.predict.fleet.serves(MODEL)).toBe(false);
    const notices = hub.api.ctx.jobs.waits.received;
    const answers = await predictWave(12);
    // That worker sends no finish notices: each call was answered by reading its job back.
    expect(hub.api.ctx.jobs.waits.received).toBe(notices);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.metrics).toEqual({ entry_items: 1 });
      expect(typeof a.body.class).toBe('number');
    }
    const lane = new Queue(predictQueueName(MODEL), { connection: hub.api.ctx.redis, prefix: hub.prefix });
    expect(Object.values(await lane.getJobCounts()).reduce((x, y) => x + y, 0)).toBe(0);
    await lane.close();
    for (const a of answers) expect((await call('DELETE', `/v1/jobs/${a.body.request_id}`)).status).toBe(200);
    // The current worker joins for the rest of this file.
    await hub.addWorker(['--device', 'cpu', '--models', MODEL]);
    const fleet = hub.api.ctx.predict.fleet;
    await expect.poll(async () => (await fleet.refresh(), fleet.serves(MODEL)), { timeout: 10_000 }).toBe(true);
  }, 120_000);

  it('beside a current worker, coalesced predicts run only on it and every call answers once', async () => {
    const answers = [...(await predictWave(8)), ...(await predictWave(8))];
    const lane = new Queue(predictQueueName(MODEL), { connection: hub.api.ctx.redis, prefix: hub.prefix });
    let coalesced = 0;
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(typeof a.body.class).toBe('number');
      if (a.body.metrics.entry_items === 1) continue;
      coalesced++;
      const entry = await lane.getJob((a.body.request_id as string).replace(/\.p\d+$/, ''));
      expect(entry!.returnvalue.metrics.worker).not.toBe('previous');
      const read = await call('GET', `/v1/jobs/${a.body.request_id}`);
      expect(read.body).toMatchObject({ status: 'succeeded', output: { class: a.body.class } });
    }
    await lane.close();
    expect(coalesced).toBeGreaterThan(0);
    for (const a of answers) expect((await call('DELETE', `/v1/jobs/${a.body.request_id}`)).status).toBe(200);
    await hub.api.reconciler.reconcileAll();
    expect(await hub.api.ctx.jobs.accounting.usage(MODEL, 't')).toEqual({ waiting: 0, storedBytes: 0 });
  }, 120_000);

  it('loses no job, sends one completed event each, and its counts settle to the truth', async () => {
    const images = await Promise.all(
      [1, 2, 3, 4].map(async (k) => b64(await solidImage(30 + k, 20 + k, [k * 50, 90, 9]))),
    );
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await call('POST', `/v1/models/${MODEL}/jobs`, {
        input: { image: images[i % 4] },
        webhook: receiver.url,
        webhook_events_filter: ['completed'],
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    for (const id of ids)
      await expect
        .poll(async () => (await call('GET', `/v1/jobs/${id}`)).body.status, { timeout: 60_000, interval: 100 })
        .toBe('succeeded');
    // Both workers served: the previous release's signs its results "previous".
    const served = await Promise.all(
      ids.map(async (id) => {
        const raw = await hub.api.ctx.redis.hget(`${hub.prefix}:{model.${MODEL}}:${id}`, 'returnvalue');
        return (JSON.parse(raw!) as { metrics: { worker: string } }).metrics.worker === 'previous';
      }),
    );
    expect(served.some((p) => p)).toBe(true);
    expect(served.some((p) => !p)).toBe(true);
    await receiver.waitFor(40, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.deliveries.map((d) => d.json.id).sort()).toEqual([...ids].sort());

    // Jobs the previous release's worker ran are settled by the reconciler (it finishes their records).
    await hub.api.reconciler.reconcileAll();
    const accounting = hub.api.ctx.jobs.accounting;
    let results = 0;
    for (const id of ids)
      results += await hub.api.ctx.redis.hstrlen(`${hub.prefix}:{model.${MODEL}}:${id}`, 'returnvalue');
    expect(await accounting.usage(MODEL, 't')).toEqual({ waiting: 0, storedBytes: results });
    for (const id of ids) expect((await call('DELETE', `/v1/jobs/${id}`)).status).toBe(200);
    expect(await accounting.usage(MODEL, 't')).toEqual({ waiting: 0, storedBytes: 0 });
  }, 120_000);
});
