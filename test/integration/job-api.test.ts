/**
 * The asynchronous job API in full, through the real queue: signed webhooks with retries,
 * idempotency, cancel, priorities, deadlines, backpressure, auth, limits, OpenAPI.
 */
import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { modelQueueName } from '../../shared/redis/keys.js';
import { verifyWebhook } from '../../shared/webhooks/signature.js';
import { REDIS_URL, getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const SECRET = `whsec_${Buffer.from('modelhub-test-webhook-secret-32b').toString('base64')}`;
const webhookEnv = {
  WEBHOOK_SECRET: SECRET,
  WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
  WEBHOOK_BACKOFF_MS: '100',
  WEBHOOK_TIMEOUT_MS: '1000',
};
let image: string;
const receivers: Receiver[] = [];
const receiver = async (respond?: Parameters<typeof startReceiver>[0]) => {
  const r = await startReceiver(respond);
  receivers.push(r);
  return r;
};
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
beforeAll(async () => {
  image = b64(await solidImage(64, 48, [200, 40, 90]));
});

function independentSignature(id: string, ts: string, body: string): string {
  const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
}

describe('with a worker', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({ name: 'jobapi', models: 'resnet50', env: webhookEnv });
  });
  afterAll(async () => hub?.stop());
  const submit = (body: unknown, headers?: Record<string, string>) =>
    postJson(`${hub.url}/v1/models/resnet50/jobs`, body, headers);

  it('sends signed start and completed events carrying the job object', async () => {
    const r = await receiver();
    const { body } = await submit({ input: { image }, webhook: r.url });
    const [start, completed] = await r.waitFor(2);
    for (const d of [start, completed]) {
      const h = d.headers as Record<string, string>;
      expect(h['webhook-signature']).toBe(independentSignature(h['webhook-id'], h['webhook-timestamp'], d.body));
      expect(verifyWebhook(SECRET, d.body, h)).toMatchObject({ id: body.id });
    }
    expect(start.json.status).toBe('running');
    expect(completed.json).toMatchObject({
      id: body.id,
      status: 'succeeded',
      output: { success: true, request_id: body.id },
    });
    expect(start.headers['webhook-id']).not.toBe(completed.headers['webhook-id']);
    const job = await pollJob(hub.url, body.id);
    expect(job.webhook.delivered_at).toEqual(expect.any(String));
    // Each event arrived at its first attempt (issue 26: this read 2, one per event).
    expect(job.webhook).toMatchObject({ attempts: 1, last_status: expect.stringMatching(/^2\d\d$/) });
  });

  it('retries a failing receiver with the same webhook-id until it succeeds, exactly once', async () => {
    const r = await receiver((i) => (i < 2 ? 500 : 200));
    const { body } = await submit({ input: { image }, webhook: r.url, webhook_events_filter: ['completed'] });
    await r.waitFor(3);
    await new Promise((res) => setTimeout(res, 1500)); // room for a wrong extra delivery
    expect(r.deliveries).toHaveLength(3);
    expect(new Set(r.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
    expect(new Set(r.deliveries.map((d) => d.body)).size).toBe(1);
    const job = await getJson(`${hub.url}/v1/jobs/${body.id}`);
    expect(job.body.webhook).toMatchObject({ attempts: 3, last_status: '200' });
  });

  it('stops retrying on 410 Gone', async () => {
    const r = await receiver(() => 410);
    const { body } = await submit({ input: { image }, webhook: r.url, webhook_events_filter: ['completed'] });
    await r.waitFor(1);
    await new Promise((res) => setTimeout(res, 1500));
    expect(r.deliveries).toHaveLength(1);
    expect((await getJson(`${hub.url}/v1/jobs/${body.id}`)).body.webhook).toMatchObject({
      attempts: 1,
      last_status: '410',
      delivered_at: null,
    });
  });

  it('a receiver that never answers does not hold up inference', async () => {
    const r = await receiver(() => 'hang');
    const slow = await submit({ input: { image }, webhook: r.url });
    const job = await pollJob(hub.url, slow.body.id);
    expect(job.status).toBe('succeeded');
    const others = await Promise.all(
      Array.from({ length: 6 }, async () => (await submit({ input: { image } }, { Prefer: 'wait=30' })).body),
    );
    expect(others.every((o) => o.status === 'succeeded')).toBe(true);
  });

  it('refuses webhook targets that are not http(s) or are private addresses', async () => {
    for (const webhook of [
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/x',
      'http://[::1]:8080/x',
      'ftp://example.com/x',
      'not a url',
    ]) {
      const r = await submit({ input: { image }, webhook });
      expect(r.status).toBe(400);
      expect(r.body.success).toBe(false);
    }
  });

  it('Idempotency-Key: the same body returns the first job (200), another body is 422', async () => {
    const key = `idem-${Date.now()}`;
    const first = await submit({ input: { image } }, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    const again = await submit({ input: { image } }, { 'Idempotency-Key': key });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await submit({ input: { image }, priority: 2 }, { 'Idempotency-Key': key });
    expect(other.status).toBe(422);
    expect(other.body.error_code).toBe(1302);
    // The same request spelled differently (key order, an explicit default) is the same request.
    const respelled = await postJson(
      `${hub.url}/v1/models/resnet50/jobs`,
      `{"priority":5,"input":{"image":"${image}"}}`,
      { 'Idempotency-Key': key },
    );
    expect(respelled.status).toBe(200);
    expect(respelled.body.id).toBe(first.body.id);
    // An omitted webhook filter is the default filter, in any order.
    const r = await receiver();
    const withFilter = await submit(
      { input: { image }, webhook: r.url, webhook_events_filter: ['completed', 'start'] },
      { 'Idempotency-Key': `${key}-w` },
    );
    const withDefault = await submit({ input: { image }, webhook: r.url }, { 'Idempotency-Key': `${key}-w` });
    expect(withDefault.status).toBe(200);
    expect(withDefault.body.id).toBe(withFilter.body.id);
  });

  it('concurrent requests with one Idempotency-Key make exactly one job', async () => {
    const key = `race-${Date.now()}`;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => submit({ input: { image } }, { 'Idempotency-Key': key })),
    );
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
  });

  it('cancel: a finished job answers 409; racing cancels never both cancel and run a job', async () => {
    const done = await submit({ input: { image } }, { Prefer: 'wait=30' });
    const late = await postJson(`${hub.url}/v1/jobs/${done.body.id}/cancel`, {});
    expect(late.status).toBe(409);
    const ids = await Promise.all(
      Array.from({ length: 12 }, async () => (await submit({ input: { image } })).body.id as string),
    );
    const cancels = await Promise.all(ids.map((id) => postJson(`${hub.url}/v1/jobs/${id}/cancel`, {})));
    for (const [i, c] of cancels.entries()) {
      expect([200, 409]).toContain(c.status);
      const final = await pollJob(hub.url, ids[i]);
      expect(final.status).toBe(c.status === 200 ? 'canceled' : 'succeeded');
    }
  });

  it('refuses bodies over the size limit (413) and absurdly deep JSON (400)', async () => {
    const deep = '{"input":{"image":' + '['.repeat(100) + ']'.repeat(100) + '}}';
    const r = await submit(deep);
    expect(r.status).toBe(400);
    expect(r.body.error_msg).toMatch(/nested deeper/);
  });

  it('serves an OpenAPI 3.1 document that has every route of the app', async () => {
    const { body } = await getJson(`${hub.url}/openapi.json`);
    expect(body.openapi).toBe('3.1.0');
    const routes = listRoutes(hub.api.server);
    expect(routes.length).toBeGreaterThan(10);
    for (const { method, path } of routes) {
      if (path === '/' || path === '/models/:name') continue; // the web console's HTML pages, not API
      const openapiPath = path.replace(/:(\w+)/g, '{$1}');
      expect(body.paths[openapiPath]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
    expect(
      body.paths['/v1/models/{model}/jobs'].post.requestBody.content['application/json'].schema.properties.priority,
    ).toMatchObject({ minimum: 1, maximum: 10 });
  });
});

/** Walks the Express app's router stack: every (method, path) it serves. */
function listRoutes(server: import('node:http').Server): { method: string; path: string }[] {
  const app = server.listeners('request')[0] as any;
  const out: { method: string; path: string }[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route)
        for (const m of Object.keys(layer.route.methods)) out.push({ method: m, path: layer.route.path });
      else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk(app.router.stack);
  return out;
}

describe('queue control with the worker stopped', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({
      name: 'queuectl',
      models: 'resnet50',
      workers: 0,
      env: { ...webhookEnv, QUEUE_MAX_WAITING: '40' },
    });
  });
  afterAll(async () => hub?.stop());
  const submit = (body: unknown) => postJson(`${hub.url}/v1/models/resnet50/jobs`, body);

  it('a canceled queued job never runs and its webhook gets one completed event saying canceled', async () => {
    const r = await receiver();
    const { body } = await submit({ input: { image }, webhook: r.url });
    const c = await postJson(`${hub.url}/v1/jobs/${body.id}/cancel`, {});
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ id: body.id, status: 'canceled', output: { success: false, error_code: 2003 } });
    expect((await postJson(`${hub.url}/v1/jobs/${body.id}/cancel`, {})).body.status).toBe('canceled');
    const [event] = await r.waitFor(1);
    expect(event.json).toMatchObject({ id: body.id, status: 'canceled' });
    (globalThis as any).canceledId = body.id;
  });

  it('a job whose deadline passes while queued ends failed and never runs', async () => {
    const { body } = await submit({ input: { image }, timeout_s: 0.3 });
    await new Promise((res) => setTimeout(res, 600));
    const job = await getJson(`${hub.url}/v1/jobs/${body.id}`);
    expect(job.body).toMatchObject({ status: 'failed', output: { success: false, error_code: 2002 } });
    (globalThis as any).expiredId = body.id;
  });

  it('answers 429 with Retry-After past the waiting limit and does not enqueue', async () => {
    const redis = new Redis(REDIS_URL);
    const queueKey = `${hub.prefix}:${modelQueueName('resnet50')}`;
    const countWaiting = async () =>
      (await redis.zcard(`${queueKey}:prioritized`)) + (await redis.llen(`${queueKey}:wait`));
    const accepted: string[] = [];
    let refused: Awaited<ReturnType<typeof submit>> | null = null;
    for (let i = 0; i < 45 && !refused; i++) {
      const r = await submit({ input: { image }, priority: i < 20 ? 10 : 1 });
      if (r.status === 202) accepted.push(r.body.id);
      else refused = r;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get('retry-after')).toBe('5');
    expect(refused?.body.error_code).toBe(1401);
    expect(await countWaiting()).toBe(40);
    redis.disconnect();
    (globalThis as any).accepted = accepted;
  });

  it('once a worker starts: high priority jobs run before low ones; canceled and expired jobs never run', async () => {
    const accepted: string[] = (globalThis as any).accepted;
    await hub.addWorker(['--device', 'cpu', '--models', 'resnet50']);
    const jobs = await Promise.all(accepted.map((id) => pollJob(hub.url, id, 60_000)));
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);
    const low = jobs.slice(0, 20).map((j) => Date.parse(j.started_at));
    const high = jobs.slice(20).map((j) => Date.parse(j.started_at));
    expect(high.length).toBeGreaterThan(10);
    expect(Math.max(...high)).toBeLessThanOrEqual(Math.min(...low));
    const canceled = await getJson(`${hub.url}/v1/jobs/${(globalThis as any).canceledId}`);
    expect(canceled.body.status).toBe('canceled');
    const expired = await pollJob(hub.url, (globalThis as any).expiredId);
    expect(expired.status).toBe('failed');
    expect(expired.output.error_code).toBe(2002);
    expect(expired.metrics).toBeUndefined();
  });
});

describe('retention', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({ name: 'retention', models: 'resnet50', env: { JOB_RETENTION_COUNT: '3' } });
  });
  afterAll(async () => hub?.stop());

  it('keeps at most JOB_RETENTION_COUNT finished jobs per model; older ones answer 404', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await postJson(
        `${hub.url}/v1/models/resnet50/jobs`,
        { input: { image } },
        { Prefer: 'wait=30', ...(i === 0 ? { 'Idempotency-Key': 'first' } : {}) },
      );
      expect(r.body.status).toBe('succeeded');
      ids.push(r.body.id);
    }
    const statuses = await Promise.all(ids.map(async (id) => (await getJson(`${hub.url}/v1/jobs/${id}`)).status));
    expect(statuses.slice(0, 3)).toEqual([404, 404, 404]);
    expect(statuses.slice(3)).toEqual([200, 200, 200]);
    // The key of a job retention removed cannot be answered again; the client is told so.
    const replay = await postJson(
      `${hub.url}/v1/models/resnet50/jobs`,
      { input: { image } },
      { 'Idempotency-Key': 'first' },
    );
    expect(replay.status).toBe(409);
    expect(replay.body.error_msg).toMatch(/no longer exists; use a new key/);
  });
});

describe('auth and tenants', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({
      name: 'auth',
      models: 'resnet50',
      workers: 0,
      env: { MODELHUB_API_KEYS: 'alice-key-0123456789:alice,bob-key-0123456789:bob' },
    });
  });
  afterAll(async () => hub?.stop());
  const as = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });

  it('needs a valid key on /v1, not on health, readiness and metrics', async () => {
    const none = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ success: false, error_code: 1101 });
    expect((await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } }, as('mallory-key'))).status).toBe(
      401,
    );
    expect((await fetch(`${hub.url}/v1/models`)).status).toBe(401);
    for (const path of ['/healthz', '/readyz', '/openapi.json'])
      expect((await fetch(`${hub.url}${path}`)).status).toBe(200);
    // Metrics live on their own listener (API_METRICS_PORT), not on the public port.
    expect((await fetch(`${hub.api.metricsUrl}/metrics`)).status).toBe(200);
    expect((await fetch(`${hub.url}/metrics`)).status).toBe(404);
  });

  it('a tenant sees, cancels and de-duplicates only its own jobs', async () => {
    const mine = await postJson(
      `${hub.url}/v1/models/resnet50/jobs`,
      { input: { image } },
      { ...as('alice-key-0123456789'), 'Idempotency-Key': 'shared-key' },
    );
    expect(mine.status).toBe(202);
    const read = (key: string) => fetch(`${hub.url}/v1/jobs/${mine.body.id}`, { headers: as(key) });
    expect((await read('alice-key-0123456789')).status).toBe(200);
    const theirs = await read('bob-key-0123456789');
    expect(theirs.status).toBe(404);
    expect((await theirs.json()).error_code).toBe(1202);
    expect((await postJson(`${hub.url}/v1/jobs/${mine.body.id}/cancel`, {}, as('bob-key-0123456789'))).status).toBe(
      404,
    );
    const bobs = await postJson(
      `${hub.url}/v1/models/resnet50/jobs`,
      { input: { image } },
      { ...as('bob-key-0123456789'), 'Idempotency-Key': 'shared-key' },
    );
    expect(bobs.status).toBe(202);
    expect(bobs.body.id).not.toBe(mine.body.id);
    expect(
      (await postJson(`${hub.url}/v1/jobs/${mine.body.id}/cancel`, {}, as('alice-key-0123456789'))).body.status,
    ).toBe('canceled');
  });
});
