/**
 * One tenant must not hurt the others, and must not see their or the operator's details:
 * admin keys, minimum key lengths, no open API on a public address by accident, per-tenant
 * waiting quota and priority ceiling, DELETE of a finished job, request-rate limits, JSON
 * structure limits counted before parsing, webhook status without connection details.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseApiKeys } from '../../api/auth.js';
import { startApi } from '../../api/server.js';
import { loadConfig } from '../../shared/config.js';
import { REDIS_URL, freePort, startHub, testPrefix, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-0123456789ab';
const ROOT = 'root-key-0123456789a';
const SECRET = `whsec_${Buffer.from('tenancy-tests-webhook-secret-32b').toString('base64')}`;
const as = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });

async function call(
  url: string,
  method: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, {
    method,
    headers: { ...as(key), 'content-type': 'application/json' },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

describe('keys and start-up', () => {
  it('refuses keys shorter than 16 characters and reads key:tenant:admin', () => {
    expect(() => parseApiKeys('short:alice')).toThrow(/shorter than 16/);
    expect(parseApiKeys(`${ALICE}:alice,${ROOT}:ops:admin`).map((k) => [k.tenant, k.admin])).toEqual([
      ['alice', false],
      ['ops', true],
    ]);
    expect(() => parseApiKeys(`${ALICE}:alice:root`)).toThrow(/key:tenant:admin/);
  });

  it('refuses a webhook secret with less than 16 bytes of key material', () => {
    expect(() => loadConfig({ WEBHOOK_SECRET: 'whsec_c2hvcnQ=' })).toThrow(/WEBHOOK_SECRET/);
    expect(() => loadConfig({ WEBHOOK_SECRET: 'short' })).toThrow(/WEBHOOK_SECRET/);
    expect(loadConfig({ WEBHOOK_SECRET: SECRET }).WEBHOOK_SECRET).toBe(SECRET);
  });

  it('will not start open on a public address unless MODELHUB_ALLOW_ANONYMOUS=true; loopback stays open', async () => {
    const base = {
      REDIS_URL,
      MODELHUB_PREFIX: testPrefix('anon'),
      LOG_LEVEL: 'silent',
      PORT: String(await freePort()),
      API_METRICS_PORT: '0',
    };
    await expect(startApi(loadConfig({ ...base, HOST: '0.0.0.0' }))).rejects.toThrow(/MODELHUB_API_KEYS is not set/);
    const open = await startApi(loadConfig({ ...base, HOST: '0.0.0.0', MODELHUB_ALLOW_ANONYMOUS: 'true' }));
    await open.close();
    const local = await startApi(loadConfig({ ...base, HOST: '127.0.0.1' }));
    await local.close();
  });
});

describe("the API's metrics listener", () => {
  it('is not the public port, and scrapes within API_METRICS_REFRESH_MS share one Redis read', async () => {
    const api = await startApi(
      loadConfig({
        REDIS_URL,
        MODELHUB_PREFIX: testPrefix('metrics'),
        LOG_LEVEL: 'silent',
        PORT: '0',
        API_METRICS_PORT: '0',
        API_METRICS_REFRESH_MS: '600000',
      }),
    );
    try {
      expect(new URL(api.metricsUrl).port).not.toBe(new URL(api.url).port);
      expect((await fetch(`${api.url}/metrics`)).status).toBe(404);
      // The first scrape reads every model's series.
      const series = async () =>
        ((await (await fetch(`${api.metricsUrl}/metrics`)).text()).match(/^modelhub_queue_jobs\{/gm) ?? []).length;
      for (let i = 0; i < 100 && (await series()) < api.ctx.jobs.queues.size * 6; i++)
        await new Promise((r) => setTimeout(r, 50));
      let reads = 0;
      for (const [, queue] of api.ctx.jobs.readQueueEntries()) {
        const original = queue.getJobCounts.bind(queue);
        queue.getJobCounts = (...types: Parameters<typeof original>) => {
          reads++;
          return original(...types);
        };
      }
      for (let i = 0; i < 5; i++) {
        const page = await (await fetch(`${api.metricsUrl}/metrics`)).text();
        expect(page).toMatch(/modelhub_queue_jobs\{/);
      }
      expect(reads).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe('tenants on a shared hub', () => {
  let hub: Hub;
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(48, 48, [5, 150, 80]));
    hub = await startHub({
      name: 'tenancy',
      models: 'resnet50',
      workers: 0,
      env: {
        MODELHUB_API_KEYS: `${ALICE}:alice,${BOB}:bob,${ROOT}:ops:admin`,
        TENANT_MAX_WAITING: '3',
        TENANT_PRIORITY_CEILING: '3',
        MODELHUB_HEARTBEAT_MS: '300',
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        WEBHOOK_BACKOFF_MS: '100',
        WEBHOOK_ATTEMPTS: '2',
        WEBHOOK_TIMEOUT_MS: '500',
      },
    });
  });
  afterAll(async () => hub?.stop());
  const submit = (key: string, extra: Record<string, unknown> = {}) =>
    call(`${hub.url}/v1/models/resnet50/jobs`, 'POST', key, { input: { image }, ...extra });

  it("caps one tenant's waiting jobs without touching another's; a cancel frees a place", async () => {
    const alice = [];
    for (let i = 0; i < 3; i++) alice.push(await submit(ALICE));
    expect(alice.map((r) => r.status)).toEqual([202, 202, 202]);
    const over = await submit(ALICE);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ success: false, error_code: 1402 });
    expect(over.headers.get('retry-after')).toBe('5');
    expect((await submit(BOB)).status).toBe(202);
    expect((await call(`${hub.url}/v1/jobs/${alice[0].body.id}/cancel`, 'POST', ALICE)).body.status).toBe('canceled');
    expect((await submit(ALICE)).status).toBe(202);
    expect((await submit(ALICE)).status).toBe(429);
  });

  it('holds tenants to the priority ceiling; admin keys may use priority 1', async () => {
    const high = await submit(BOB, { priority: 1 });
    expect(high.status).toBe(400);
    expect(high.body).toMatchObject({ error_code: 1006, error_msg: expect.stringMatching(/priority 1/) });
    expect((await submit(ROOT, { priority: 1 })).status).toBe(202);
  });

  it('shows worker details to admin keys only; tenants see counts', async () => {
    await hub.addWorker();
    let admin = await call(`${hub.url}/v1/workers`, 'GET', ROOT);
    for (let i = 0; i < 50 && admin.body.count === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      admin = await call(`${hub.url}/v1/workers`, 'GET', ROOT);
    }
    expect(admin.body.workers[0]).toMatchObject({ device: 'cpu', pid: expect.any(Number), host: expect.any(String) });
    const tenant = await call(`${hub.url}/v1/workers`, 'GET', BOB);
    expect(tenant.body).toEqual({ count: 1, by_device: { cpu: 1 }, by_model: { resnet50: 1 } });
    expect(JSON.stringify(tenant.body)).not.toMatch(/pid|host/);
  });

  it('DELETE removes a finished job (input, output, index) for its tenant only', async () => {
    const { body } = await submit(BOB);
    let job: any = null;
    for (let i = 0; i < 300 && (!job || job.status === 'queued' || job.status === 'running'); i++) {
      job = (await call(`${hub.url}/v1/jobs/${body.id}`, 'GET', BOB)).body;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job.status).toBe('succeeded');
    expect((await call(`${hub.url}/v1/jobs/${body.id}`, 'DELETE', ALICE)).status).toBe(404);
    expect((await call(`${hub.url}/v1/jobs/${body.id}`, 'DELETE', BOB)).body).toEqual({ id: body.id, deleted: true });
    expect((await call(`${hub.url}/v1/jobs/${body.id}`, 'GET', BOB)).status).toBe(404);
    const redis = hub.api.ctx.redis;
    expect(await redis.exists(`${hub.prefix}:{model.resnet50}:${body.id}`)).toBe(0);
    expect(await redis.exists(`${hub.prefix}:jobindex:${body.id}`)).toBe(0);
  });

  it('records an unreachable webhook as "unreachable", never the connection error', async () => {
    const closedPort = await freePort();
    const { body } = await submit(ALICE, { webhook: `http://127.0.0.1:${closedPort}/hook` });
    let job: any = null;
    for (let i = 0; i < 300; i++) {
      job = (await call(`${hub.url}/v1/jobs/${body.id}`, 'GET', ALICE)).body;
      if (job.webhook?.attempts >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job.webhook).toMatchObject({ last_status: 'unreachable' });
  });

  it('counts JSON values on the raw bytes before parsing: a huge flat array is a 400', async () => {
    const flat = `{"input":{"image":"x","pad":[${'0,'.repeat(150_000)}0]}}`;
    const r = await call(`${hub.url}/v1/models/resnet50/jobs`, 'POST', BOB, flat);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      error_code: 1002,
      error_msg: expect.stringMatching(/more than 100000 JSON values/),
    });
  });
});

describe('per-tenant request rate', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({
      name: 'ratelimit',
      models: 'resnet50',
      workers: 0,
      env: { MODELHUB_API_KEYS: `${ALICE}:alice,${BOB}:bob`, TENANT_RATE_RPS: '1' },
    });
  });
  afterAll(async () => hub?.stop());

  it('answers a flood with 429 + Retry-After (polling counts too) while another tenant is served', async () => {
    const flood = await Promise.all(Array.from({ length: 20 }, () => call(`${hub.url}/v1/models`, 'GET', ALICE)));
    const limited = flood.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(limited[0].body).toMatchObject({ success: false, error_code: 1403 });
    expect(Number(limited[0].headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await call(`${hub.url}/v1/jobs/00000000-0000-0000-0000-000000000000`, 'GET', ALICE)).status).toBe(429);
    expect((await call(`${hub.url}/v1/models`, 'GET', BOB)).status).toBe(200);
  });
});
