/**
 * The TypeScript SDK (as shipped: clients/typescript/lib) against a real hub: the API in-process
 * and a worker process, through Redis. Spec outputs, spec errors as ModelHubError, submit/wait
 * with Prefer: wait and with plain polling, cancel, API keys, webhook verification.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { signWebhook as serverSign } from '../../shared/webhooks/signature.js';
import {
  ModelHub,
  ModelHubError,
  WaitTimeoutError,
  WebhookVerificationError,
  outputOf,
  verifyWebhook,
} from '../../clients/typescript/lib/index.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { renderWords } from '../helpers/text-image.js';

const SECRET = 'whsec_' + Buffer.from('sdk test secret, 32 bytes long!!').toString('base64');
let hub: Hub;
let sdk: ModelHub;
let receiver: Receiver;
beforeAll(async () => {
  // resnet50 has no worker here: its jobs stay queued (for cancel and wait-timeout tests).
  hub = await startHub({
    name: 'sdk',
    models: 'text-direction,text-detection,bert-base-chinese',
    env: { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32', WEBHOOK_BACKOFF_MS: '100' },
  });
  sdk = new ModelHub({ url: hub.url });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await hub?.stop();
});

const exampleImage = (model: string) =>
  fs.readFileSync(path.join(REPO_ROOT, 'models', model, 'example.png')).toString('base64');

describe('catalog', () => {
  it('models() lists every model with status, workers and queue depth', async () => {
    // The worker's first heartbeat may land just after its health check answered.
    const direction = async () => (await sdk.models()).find((m) => m.name === 'text-direction');
    await expect.poll(direction, { timeout: 15_000 }).toMatchObject({
      task: 'image-classification',
      status: 'ready',
      weights: 'real',
      workers: 1,
      queue: { waiting: 0, active: 0 },
    });
    expect((await sdk.models()).find((m) => m.name === 'resnet50')).toMatchObject({ status: 'no_workers', workers: 0 });
  });

  it('model() and example() document a model and give a ready input', async () => {
    const detail = await sdk.model('text-direction');
    expect(detail.labels).toEqual(['0', '180']);
    expect(Object.keys(detail.output.fields)).toEqual(['class', 'class_name', 'class_probs']);
    const example = await sdk.example('text-direction');
    expect(example.image).toBe(exampleImage('text-direction'));
  });
});

describe('predict and jobs', () => {
  it('predict() answers the spec output, typed per model', async () => {
    const out = await sdk.predict('text-direction', { image: exampleImage('text-direction') });
    expect(out.success).toBe(true);
    expect(out.class_name).toBe('180');
    expect(out.class).toBe(1);
    expect(Object.keys(out.class_probs).sort()).toEqual(['0', '180']);
  });

  it('predict() on a text model answers its vectors', async () => {
    const out = await sdk.predict('bert-base-chinese', {
      first_sequence: '双十一花呗提额在哪',
      sequence_length: 16,
      output_schema: 'pool_output',
      format: 'array',
    });
    expect(Array.isArray(out.pool_output)).toBe(true);
    expect((out.pool_output as number[]).length).toBeGreaterThan(0);
  });

  it('submit() then wait() finds the boxes of a rendered word', async () => {
    const img = await renderWords(240, 80, [{ text: 'Hub', x: 30, y: 55, size: 40 }]);
    const job = await sdk.submit('text-detection', { image: img.png.toString('base64'), max_detections: 5 });
    expect(job.status).toBe('queued');
    const statuses: string[] = [];
    const done = await sdk.wait(job, { onUpdate: (j) => statuses.push(j.status) });
    expect(done.status).toBe('succeeded');
    expect(statuses.at(-1)).toBe('succeeded');
    const out = outputOf(done);
    expect(out.detection_class_names).toEqual(['text']);
    const [y1, x1, y2, x2] = out.detection_boxes[0];
    const [tx1, ty1, tx2, ty2] = img.boxes[0];
    expect(x1).toBeLessThanOrEqual(tx1 + 3);
    expect(y1).toBeLessThanOrEqual(ty1 + 3);
    expect(x2).toBeGreaterThanOrEqual(tx2 - 3);
    expect(y2).toBeGreaterThanOrEqual(ty2 - 3);
  });

  it('wait() holds its reads with Prefer: wait, and polls with backoff where the hub answers at once', async () => {
    const seen: { url: string; prefer: string | null }[] = [];
    const recording =
      (strip: boolean): typeof fetch =>
      async (url, init) => {
        const headers = new Headers(init?.headers);
        if (strip) headers.delete('prefer');
        seen.push({ url: String(url), prefer: headers.get('prefer') });
        return fetch(url, { ...init, headers });
      };
    const held = new ModelHub({ url: hub.url, fetch: recording(false) });
    const job = await held.submit('text-direction', { image: exampleImage('text-direction') });
    expect((await held.wait(job.id)).status).toBe('succeeded');
    const reads = seen.filter((s) => s.url.endsWith(`/v1/jobs/${job.id}`));
    expect(reads[0].prefer).toBe('wait=20');
    expect(reads.length).toBeLessThanOrEqual(2);

    // A hub that does not hold: the SDK polls, and its pauses grow (so reads stay few).
    seen.length = 0;
    const polling = new ModelHub({ url: hub.url, fetch: recording(true) });
    const queued = await polling.submit('resnet50', { image: exampleImage('resnet50') });
    const started = Date.now();
    const err = await polling.wait(queued.id, { timeoutS: 3, pollMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err.job.status).toBe('queued');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    const polls = seen.filter((s) => s.url.endsWith(`/v1/jobs/${queued.id}`)).length;
    // 100, 200, 400, 800, 1600 ms pauses (±20 %) fit about 5-6 reads in 3 s; fixed 100 ms would be ~30.
    expect(polls).toBeGreaterThanOrEqual(3);
    expect(polls).toBeLessThanOrEqual(8);
    await sdk.cancel(queued.id);
  });

  it('cancel() cancels a queued job; canceling a finished one is a 409 ModelHubError', async () => {
    const job = await sdk.submit(
      'resnet50',
      { image: exampleImage('resnet50') },
      { priority: 2, idempotencyKey: `sdk-${Date.now()}` },
    );
    const canceled = await sdk.cancel(job.id);
    expect(canceled.status).toBe('canceled');
    expect((await sdk.get(job.id)).status).toBe('canceled');
    expect(() => outputOf(canceled)).toThrow(ModelHubError);

    const done = await sdk.wait(await sdk.submit('text-direction', { image: exampleImage('text-direction') }));
    const err = await sdk.cancel(done.id).catch((e) => e);
    expect(err).toBeInstanceOf(ModelHubError);
    expect(err).toMatchObject({ status: 409, error_code: 1301 });
  });
});

describe('spec errors', () => {
  it('a non-image is a ModelHubError with error_code 1003 and HTTP 400', async () => {
    const err = await sdk
      .predict('text-direction', { image: Buffer.from('plain text, not an image').toString('base64') })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ModelHubError);
    expect(err.error_code).toBe(1003);
    expect(err.status).toBe(400);
    expect(err.error_msg).toMatch(/not a decodable image/);
  });

  it('an unknown model or job is 404 with its own code', async () => {
    await expect(sdk.model('no-such-model')).rejects.toMatchObject({ error_code: 1201, status: 404 });
    await expect(sdk.get('no-such-job')).rejects.toMatchObject({ error_code: 1202, status: 404 });
  });
});

describe('API keys', () => {
  it('sends the key as a bearer token; without it the hub answers 1101', async () => {
    const secured = await startHub({
      name: 'sdkkeys',
      workers: 0,
      env: { MODELHUB_API_KEYS: 'k-alpha-0123456789ab:alpha' },
    });
    try {
      await expect(new ModelHub({ url: secured.url }).models()).rejects.toMatchObject({
        error_code: 1101,
        status: 401,
      });
      await expect(new ModelHub({ url: secured.url, apiKey: 'wrong' }).models()).rejects.toMatchObject({
        error_code: 1101,
      });
      expect(
        (await new ModelHub({ url: secured.url, apiKey: 'k-alpha-0123456789ab' }).models()).length,
      ).toBeGreaterThan(0);
    } finally {
      await secured.stop();
    }
  });
});

describe('webhooks', () => {
  it("verifyWebhook() accepts the hub's real delivery and returns the job", async () => {
    const job = await sdk.submit(
      'text-direction',
      { image: exampleImage('text-direction') },
      { webhook: receiver.url, webhookEvents: ['completed'] },
    );
    const [delivery] = await receiver.waitFor(1, 30_000);
    const verified = await verifyWebhook(SECRET, delivery.body, delivery.headers as Record<string, string>);
    expect(verified.id).toBe(job.id);
    expect(verified.status).toBe('succeeded');
    // Any change to the body, or another secret, fails.
    await expect(
      verifyWebhook(SECRET, delivery.body.replace('succeeded', 'failed'), delivery.headers as Record<string, string>),
    ).rejects.toBeInstanceOf(WebhookVerificationError);
    await expect(
      verifyWebhook(
        'whsec_' + Buffer.from('another secret').toString('base64'),
        delivery.body,
        delivery.headers as Record<string, string>,
      ),
    ).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('checks the timestamp window and accepts plain-string secrets as the hub does', async () => {
    const body = JSON.stringify({ id: 'j1', status: 'succeeded' });
    const old = new Date(Date.now() - 10 * 60_000);
    const stale = { ...serverSign('plain secret', 'msg_1', body, old) };
    await expect(verifyWebhook('plain secret', body, stale)).rejects.toThrow(/timestamp/);
    expect((await verifyWebhook('plain secret', body, stale, { now: old })).id).toBe('j1');
    const fresh = new Headers(serverSign('plain secret', 'msg_2', body) as unknown as Record<string, string>);
    expect((await verifyWebhook('plain secret', body, fresh)).status).toBe('succeeded');
    await expect(verifyWebhook('plain secret', body, {})).rejects.toThrow(/missing/);
  });
});
