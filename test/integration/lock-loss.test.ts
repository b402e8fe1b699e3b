/**
 * A worker stopped past its lock time (SIGSTOP: a stalled VM, a long GC, CPU starvation) while a
 * second worker serves the same model. Its jobs are recovered by the other worker or canceled
 * during the lapse; when it wakes up, it must not count, report or deliver anything for them:
 * every job ends once, with one `completed` webhook event, counted once as succeeded, and a job
 * canceled during the lapse never delivers a `succeeded` event.
 */
import fs from 'node:fs';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, metricValue, startHub, type Hub, type WorkerProcess } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { slowModelsDir } from '../helpers/slow-model.js';

const KEY = 'tenant-key-lock-loss-test';
const SECRET = 'whsec_' + Buffer.from('lock loss test secret, 32 bytes!').toString('base64');
const headers = { Authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const LOCK_MS = 2000;

describe('a worker stopped past its lock time, a second worker serving', () => {
  let hub: Hub<WorkerProcess>;
  let receiver: Receiver;
  let modelsDir: string;
  let queue: Queue;
  beforeAll(async () => {
    // About 0.4 s per image: a batch of 4 takes over a second, so the stop lands mid-batch.
    modelsDir = slowModelsDir({ layers: 12 });
    receiver = await startReceiver();
    hub = await startHub({
      workerProcesses: true,
      name: 'lockloss',
      models: 'slow',
      workers: 0,
      env: {
        MODELHUB_MODELS_DIR: modelsDir,
        MODELHUB_API_KEYS: `${KEY}:t`,
        TENANT_RATE_RPS: '0',
        MODELHUB_LOCK_MS: String(LOCK_MS),
        MODELHUB_STALLED_INTERVAL_MS: '500',
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
      },
    });
    queue = new Queue(modelQueueName('slow'), { connection: new Redis(REDIS_URL), prefix: hub.prefix });
  });
  afterAll(async () => {
    for (const w of hub?.workers ?? []) if (w.child.signalCode === null) w.child.kill('SIGCONT');
    await queue?.close();
    await receiver?.close();
    await hub?.stop();
    if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${hub.url}${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: r.status, body: (await r.json()) as any };
  };
  const succeededBy = async (w: WorkerProcess) => {
    const page = await (await fetch(`${w.metricsUrl}/metrics`)).text();
    return page.includes('outcome="succeeded"')
      ? metricValue(page, 'modelhub_worker_jobs_total', { model: 'slow', outcome: 'succeeded' })
      : 0;
  };

  it('every job ends once, is counted once, and delivers one completed event that agrees with it', async () => {
    const image = b64(await solidImage(64, 64, [120, 30, 200]));
    const first = await hub.addWorker(['--device', 'cpu', '--models', 'slow']);
    // Exactly the first worker's concurrency (2 × max_batch_size): it holds them all.
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await call('POST', '/v1/models/slow/jobs', {
        input: { image },
        webhook: receiver.url,
        webhook_events_filter: ['completed'],
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    await expect.poll(() => queue.getActiveCount(), { timeout: 30_000, interval: 50 }).toBe(8);
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGSTOP');
    // Past the lock time, with no other worker yet: the jobs sit in "active" with their locks gone.
    await new Promise((r) => setTimeout(r, LOCK_MS + 1500));
    // A job the worker ran alone (a batch of one, about 0.35 s) may have finished before the stop:
    // what is canceled and what the second worker recovers are the jobs the stop left held.
    const held: string[] = [];
    for (const id of ids) if ((await queue.getJobState(id)) === 'active') held.push(id);
    expect(held.length).toBeGreaterThanOrEqual(4);
    const canceled: string[] = [];
    for (const id of held.slice(0, 4)) {
      const r = await call('POST', `/v1/jobs/${id}/cancel`);
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('canceled');
      canceled.push(id);
    }
    // The second worker finds the rest stalled and runs them.
    const second = await hub.addWorker(['--device', 'cpu', '--models', 'slow']);
    const rest = ids.filter((id) => !canceled.includes(id));
    for (const id of rest)
      await expect
        .poll(async () => (await call('GET', `/v1/jobs/${id}`)).body.status, { timeout: 60_000, interval: 200 })
        .toBe('succeeded');
    // The first worker wakes up mid-batch: its completions are refused, its lock renewals fail.
    first.child.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, LOCK_MS * 2));
    // And it serves new jobs as before.
    const after = await call('POST', '/v1/models/slow/jobs', { input: { image } });
    await expect
      .poll(async () => (await call('GET', `/v1/jobs/${after.body.id}`)).body.status, {
        timeout: 60_000,
        interval: 200,
      })
      .toBe('succeeded');

    for (const id of canceled) expect((await call('GET', `/v1/jobs/${id}`)).body.status).toBe('canceled');
    await receiver.waitFor(8, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const events = receiver.deliveries.map((d) => ({
      id: d.json.id as string,
      status: d.json.status as string,
      messageId: d.headers['webhook-id'],
    }));
    expect(events).toHaveLength(8);
    expect(new Set(events.map((e) => e.messageId)).size).toBe(8);
    for (const id of canceled) expect(events.filter((e) => e.id === id).map((e) => e.status)).toEqual(['canceled']);
    for (const id of rest) expect(events.filter((e) => e.id === id).map((e) => e.status)).toEqual(['succeeded']);
    // Counted once, by the worker whose completion BullMQ recorded: the four, plus the one after.
    expect((await succeededBy(first)) + (await succeededBy(second))).toBe(rest.length + 1);
    const lost = await (await fetch(`${first.metricsUrl}/metrics`)).text();
    expect(metricValue(lost, 'modelhub_worker_locks_lost_total', { model: 'slow' })).toBeGreaterThan(0);

    // Nothing held once every job is deleted.
    for (const id of [...ids, after.body.id]) expect((await call('DELETE', `/v1/jobs/${id}`)).status).toBe(200);
    expect((await call('GET', '/v1/usage')).body.models.slow).toMatchObject({
      waiting: { used: 0 },
      stored_bytes: { used: 0 },
    });
  }, 180_000);
});
