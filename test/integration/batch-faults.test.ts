/**
 * Batches under faults: a worker killed mid-batch (every item ends exactly once), and the API
 * restarted mid-batch (the batch is Redis state: a new API answers for it and it completes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../api/server.js';
import { metricValue, startHub, type Hub, type WorkerProcess } from '../helpers/hub.js';
import { pollBatch, postJsonl, results } from '../helpers/batches.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver } from '../helpers/receiver.js';

const SECRET = `whsec_${Buffer.from('batch-faults-webhook-secret-32by').toString('base64')}`;
const fastRecovery = { MODELHUB_LOCK_MS: '3000', MODELHUB_STALLED_INTERVAL_MS: '1000', MODELHUB_HEARTBEAT_MS: '500' };

async function itemsDoneBy(metricsUrl: string): Promise<number> {
  const page = await (await fetch(`${metricsUrl}/metrics`)).text().catch(() => '');
  return page.includes('modelhub_worker_batch_items_total{')
    ? metricValue(page, 'modelhub_worker_batch_items_total', { model: 'resnet50' })
    : 0;
}

function expectEveryItemOnce(lines: any[], total: number): void {
  expect(lines).toHaveLength(total);
  expect(new Set(lines.map((l) => l.index)).size).toBe(total);
  expect(Math.min(...lines.map((l) => l.index))).toBe(0);
  expect(Math.max(...lines.map((l) => l.index))).toBe(total - 1);
}

describe('a batch under faults', () => {
  let hub: Hub<WorkerProcess>;
  let lines: string[];
  beforeAll(async () => {
    hub = await startHub({
      workerProcesses: true,
      name: 'batchfault',
      models: 'resnet50',
      workers: 2,
      env: {
        ...fastRecovery,
        BATCH_CHUNK_SIZE: '16',
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        WEBHOOK_BACKOFF_MS: '200',
      },
    });
    const colours: [number, number, number][] = [
      [250, 20, 20],
      [20, 250, 20],
      [20, 20, 250],
    ];
    const images = await Promise.all(colours.map((c) => solidImage(64, 64, c).then(b64)));
    lines = Array.from({ length: 400 }, (_, i) => JSON.stringify({ image: images[i % 3] }));
  });
  afterAll(async () => hub?.stop());

  it('a worker SIGKILLed mid-batch: every item ends exactly once, all succeeded, one batch.completed', async () => {
    const receiver = await startReceiver();
    const submitted = await postJsonl(
      `${hub.url}/v1/models/resnet50/batches?webhook=${encodeURIComponent(receiver.url)}`,
      lines,
    );
    expect(submitted.status).toBe(202);
    const victim = hub.workers[0];
    for (const deadline = Date.now() + 90_000; (await itemsDoneBy(victim.metricsUrl)) < 48;) {
      if (Date.now() > deadline) throw new Error('the first worker finished no chunks');
      await new Promise((r) => setTimeout(r, 20));
    }
    victim.child.kill('SIGKILL');
    const done = await pollBatch(hub.url, submitted.body.id);
    expect(done.counts).toEqual({ total: 400, queued: 0, running: 0, succeeded: 400, failed: 0, canceled: 0 });
    const out = await results(hub.url, done.id, 'input');
    expectEveryItemOnce(out, 400);
    // Same image, same answer, whichever worker (or attempt) ran it.
    for (let k = 0; k < 3; k++)
      expect(new Set(out.filter((l) => l.index % 3 === k).map((l) => l.output.class)).size).toBe(1);
    await receiver.waitFor(1, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.deliveries[0].json).toMatchObject({
      type: 'batch.completed',
      id: done.id,
      counts: { succeeded: 400 },
    });
    await receiver.close();
    await hub.addWorker();
  }, 240_000);

  it('the API restarted mid-batch: the new API reads the batch and its results, and it completes', async () => {
    const submitted = await postJsonl(`${hub.url}/v1/models/resnet50/batches`, lines);
    expect(submitted.status).toBe(202);
    for (;;) {
      const view = (await (await fetch(`${hub.url}/v1/batches/${submitted.body.id}`)).json()) as any;
      if (view.counts.succeeded >= 32) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await hub.api.close();
    hub.api = await startApi(hub.config);
    hub.url = hub.api.url;
    const during = (await (await fetch(`${hub.url}/v1/batches/${submitted.body.id}`)).json()) as any;
    expect(during).toMatchObject({ id: submitted.body.id, counts: { total: 400 } });
    expect(during.counts.succeeded).toBeGreaterThanOrEqual(32);
    const partial = await results(hub.url, submitted.body.id);
    expect(partial.length).toBeGreaterThanOrEqual(32);
    const done = await pollBatch(hub.url, submitted.body.id);
    expect(done).toMatchObject({ status: 'completed', counts: { total: 400, succeeded: 400 } });
    expectEveryItemOnce(await results(hub.url, done.id, 'input'), 400);
  }, 240_000);
});
