/**
 * Fault tests: the promise that an accepted job is never lost and never answered twice,
 * whatever happens to a worker or to Redis for a while. Bounded in time.
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelQueueName } from '../../shared/redis/keys.js';
import {
  REDIS_URL,
  getJson,
  metricValue,
  pollJob,
  postJson,
  startHub,
  type Hub,
  type WorkerProcess,
} from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver } from '../helpers/receiver.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { slowModelsDir } from '../helpers/slow-model.js';

const SECRET = `whsec_${Buffer.from('fault-tests-webhook-secret-32byt').toString('base64')}`;
// Short locks so a killed worker's jobs are recovered within seconds.
const fastRecovery = { MODELHUB_LOCK_MS: '3000', MODELHUB_STALLED_INTERVAL_MS: '1000', MODELHUB_HEARTBEAT_MS: '500' };

async function submitAll(
  hub: Hub,
  model: string,
  inputs: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
  concurrency = 16,
): Promise<string[]> {
  const ids: string[] = new Array(inputs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < inputs.length) {
        const i = next++;
        const r = await postJson(`${hub.url}/v1/models/${model}/jobs`, { input: inputs[i], ...extra });
        if (r.status !== 202) throw new Error(`submit ${i}: ${r.status} ${JSON.stringify(r.body)}`);
        ids[i] = r.body.id;
      }
    }),
  );
  return ids;
}

async function pollAll(hub: Hub, ids: string[], timeoutMs = 120_000): Promise<any[]> {
  const out: any[] = [];
  for (let i = 0; i < ids.length; i += 50)
    out.push(...(await Promise.all(ids.slice(i, i + 50).map((id) => pollJob(hub.url, id, timeoutMs)))));
  return out;
}

describe('a worker killed mid-run', () => {
  let hub: Hub<WorkerProcess>;
  beforeAll(async () => {
    hub = await startHub({
      workerProcesses: true,
      name: 'kill',
      models: 'resnet50',
      workers: 2,
      env: {
        ...fastRecovery,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        WEBHOOK_BACKOFF_MS: '200',
      },
    });
  });
  afterAll(async () => hub?.stop());

  it('two workers, 500 jobs, SIGKILL one: 500 succeeded, 0 lost, one final result each', async () => {
    const receiver = await startReceiver();
    const colours: [number, number, number][] = [
      [250, 20, 20],
      [20, 250, 20],
      [20, 20, 250],
      [200, 200, 30],
    ];
    const images = await Promise.all(colours.map((c) => solidImage(96, 96, c)));
    const inputs = Array.from({ length: 500 }, (_, i) => ({ image: b64(images[i % images.length]) }));
    const victim = hub.workers[0];
    const submitted = submitAll(hub, 'resnet50', inputs, {
      webhook: receiver.url,
      webhook_events_filter: ['completed'],
    });

    // Kill the first worker once it has finished some jobs but while jobs remain.
    let doneByVictim: number;
    for (const deadline = Date.now() + 90_000; ;) {
      if (Date.now() > deadline) throw new Error('the first worker finished no jobs');
      const page = await (await fetch(`${victim.metricsUrl}/metrics`)).text().catch(() => '');
      doneByVictim = page.includes('outcome="succeeded"')
        ? metricValue(page, 'modelhub_worker_jobs_total', { model: 'resnet50', outcome: 'succeeded' })
        : 0;
      if (doneByVictim >= 40) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    victim.child.kill('SIGKILL');
    const ids = await submitted;
    const jobs = await pollAll(hub, ids);
    const completedAtKill = doneByVictim;
    expect(completedAtKill).toBeLessThan(500);
    expect(jobs.filter((j) => j.status === 'succeeded')).toHaveLength(500);
    // Same image, same answer: a recovered job's result equals its peers'.
    for (let k = 0; k < images.length; k++) {
      const classes = new Set(jobs.filter((_, i) => i % images.length === k).map((j) => j.output.class));
      expect(classes.size).toBe(1);
    }
    await receiver.waitFor(500, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const deliveredIds = receiver.deliveries.map((d) => d.json.id);
    expect(deliveredIds).toHaveLength(500);
    expect(new Set(deliveredIds).size).toBe(500);
    expect(receiver.deliveries.every((d) => d.json.status === 'succeeded')).toBe(true);
    await receiver.close();
  }, 240_000);

  it('the dead worker leaves the registry within a few heartbeats; the live one stays', async () => {
    const deadline = Date.now() + 10_000;
    let workers: any[];
    do {
      workers = (await getJson(`${hub.url}/v1/workers`)).body.workers;
      if (workers.length === 1) break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({ device: 'cpu', models: ['resnet50'] });
    const catalog = (await getJson(`${hub.url}/v1/models`)).body.models.find((m: any) => m.name === 'resnet50');
    expect(catalog).toMatchObject({ status: 'ready', workers: 1 });
  });
});

describe('Redis restarted during a run', () => {
  it('answers 503 while Redis is down, then every job accepted before and after completes', async () => {
    const redis = await startPrivateRedis();
    const hub = await startHub({
      workerProcesses: true,
      name: 'redisrestart',
      models: 'resnet50',
      env: { ...fastRecovery, REDIS_URL: redis.url },
    });
    try {
      const image = b64(await solidImage(64, 64, [10, 120, 240]));
      const before = await submitAll(
        hub,
        'resnet50',
        Array.from({ length: 80 }, () => ({ image })),
      );
      await redis.stop();

      const down = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ success: false, error_code: 1501 });
      expect((await getJson(`${hub.url}/readyz`)).status).toBe(503);
      expect((await getJson(`${hub.url}/v1/jobs/${before[0]}`)).status).toBe(503);
      expect((await getJson(`${hub.url}/healthz`)).status).toBe(200);

      await redis.start();
      const deadline = Date.now() + 20_000;
      while ((await getJson(`${hub.url}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('API did not become ready again');
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await submitAll(
        hub,
        'resnet50',
        Array.from({ length: 40 }, () => ({ image })),
      );
      const jobs = await pollAll(hub, [...before, ...after], 60_000);
      expect(jobs.map((j) => j.status).filter((s) => s !== 'succeeded')).toEqual([]);
      expect(hub.workers[0].child.exitCode).toBeNull();
    } finally {
      await hub.stop();
      await redis.cleanup();
    }
  }, 180_000);
});

describe('Redis hung during synchronous waits', () => {
  it('predict and Prefer: wait answer spec errors (never hang, never crash) and the API recovers', async () => {
    const redis = await startPrivateRedis();
    // No worker: the requests wait for jobs that will not finish.
    const hub = await startHub({
      workerProcesses: true,
      name: 'redishang',
      models: 'resnet50',
      workers: 0,
      env: { REDIS_URL: redis.url, PREDICT_WAIT_S: '3' },
    });
    try {
      const image = b64(await solidImage(32, 32, [5, 5, 5]));
      const inFlight = [
        postJson(`${hub.url}/v1/models/resnet50/predict`, { image }),
        postJson(`${hub.url}/v1/models/resnet50/predict`, { image }),
        postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } }, { Prefer: 'wait=3' }),
      ];
      await new Promise((r) => setTimeout(r, 300));
      redis.pause();
      const answers = await Promise.all(inFlight);
      redis.resume();
      for (const a of answers) {
        expect([202, 503, 504]).toContain(a.status);
        if (a.status !== 202) expect(a.body).toMatchObject({ success: false, error_code: expect.any(Number) });
      }
      expect((await getJson(`${hub.url}/healthz`)).status).toBe(200);
      const deadline = Date.now() + 20_000;
      while ((await getJson(`${hub.url}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('API did not become ready again');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } })).status).toBe(202);
    } finally {
      redis.resume();
      await hub.stop();
      await redis.cleanup();
    }
  }, 120_000);
});

describe('long batches (a slow model: seconds per batch)', () => {
  let hub: Hub<WorkerProcess>;
  let modelsDir: string;
  beforeAll(async () => {
    // ~1 s per image on an idle 2-core machine: a 0.5 s deadline passes while a job runs.
    modelsDir = slowModelsDir({ layers: 30 });
    // A 1 s lock against ~2 s batches: jobs survive only if inference leaves the event loop free.
    hub = await startHub({
      workerProcesses: true,
      name: 'slow',
      models: 'slow',
      env: { MODELHUB_MODELS_DIR: modelsDir, MODELHUB_LOCK_MS: '1000', MODELHUB_STALLED_INTERVAL_MS: '500' },
    });
  });
  afterAll(async () => {
    await hub?.stop();
    fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  const queue = () => new Queue(modelQueueName('slow'), { connection: new Redis(REDIS_URL), prefix: hub.prefix });

  it('keeps locks alive through inference: no job is declared stalled', async () => {
    const image = b64(await solidImage(64, 64, [90, 90, 90]));
    const ids = await submitAll(
      hub,
      'slow',
      Array.from({ length: 8 }, () => ({ image })),
      {},
      8,
    );
    const jobs = await pollAll(hub, ids, 60_000);
    expect(jobs.map((j) => j.output)).toEqual(jobs.map(() => expect.objectContaining({ success: true })));
    const q = queue();
    for (const id of ids) {
      const job = await q.getJob(id);
      expect(job!.stalledCounter).toBe(0);
      expect(job!.attemptsMade).toBe(1);
    }
    await q.close();
  }, 120_000);

  it('a job whose deadline passes while it runs fails with 2002; its batch-mate succeeds', async () => {
    const image = b64(await solidImage(64, 64, [20, 20, 20]));
    const [short, plain] = await Promise.all([
      postJson(`${hub.url}/v1/models/slow/jobs`, { input: { image }, timeout_s: 0.5 }),
      postJson(`${hub.url}/v1/models/slow/jobs`, { input: { image } }),
    ]);
    const [a, b] = await pollAll(hub, [short.body.id, plain.body.id], 60_000);
    expect(a).toMatchObject({ status: 'failed', output: { success: false, error_code: 2002 } });
    expect(a.output.error_msg).toMatch(/while it ran/);
    expect(a.started_at).toEqual(expect.any(String));
    expect(b.status).toBe('succeeded');
  }, 120_000);

  it('SIGTERM during a batch: the batch completes, the worker exits 0 and takes nothing new', async () => {
    const image = b64(
      await sharp({ create: { width: 40, height: 40, channels: 3, background: '#777' } })
        .png()
        .toBuffer(),
    );
    const inFlight = await submitAll(
      hub,
      'slow',
      Array.from({ length: 4 }, () => ({ image })),
      {},
      4,
    );
    const deadline = Date.now() + 20_000;
    while (
      !(await Promise.all(inFlight.map(async (id) => (await getJson(`${hub.url}/v1/jobs/${id}`)).body.status))).every(
        (s) => s === 'running',
      )
    ) {
      if (Date.now() > deadline) throw new Error('jobs did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
    const worker = hub.workers[0];
    const exitCode = worker.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const later = await submitAll(hub, 'slow', [{ image }, { image }], {}, 2);
    expect(await exitCode).toBe(0);
    const finished = await Promise.all(inFlight.map(async (id) => (await getJson(`${hub.url}/v1/jobs/${id}`)).body));
    expect(finished.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(finished.every((j) => j.metrics.batch_size >= 1 && j.output.success === true)).toBe(true);
    const waiting = await Promise.all(later.map(async (id) => (await getJson(`${hub.url}/v1/jobs/${id}`)).body.status));
    expect(waiting).toEqual(['queued', 'queued']);
    // A fresh worker takes them.
    await hub.addWorker(['--device', 'cpu', '--models', 'slow']);
    expect((await pollAll(hub, later, 60_000)).every((j) => j.status === 'succeeded')).toBe(true);
  }, 120_000);
});
