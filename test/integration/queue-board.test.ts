/**
 * The queue board at /admin/queues (issue 26), against a real API and Redis (no worker: jobs stay
 * queued): admin keys only (HTTP Basic with the key as the password, or Bearer), tenants 403,
 * anonymous 401 with a Basic challenge; bull-board's own mutation API refused server-side, every
 * one of its routes, with nothing changed in Redis; every model's queue, every batch lane and the
 * webhook queue listed; a job's input image elided. (The browser side: test/browser/queue-board.test.ts.)
 */
import { appRoutes } from '@bull-board/api/dist/routes.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elideForBoard, presentedKey } from '../../api/queue-board.js';
import { startApi } from '../../api/server.js';
import { loadConfig } from '../../shared/config.js';
import { WEBHOOK_QUEUE, bulkQueueName, modelQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, freePort, postJson, startHub, testPrefix, type Hub } from '../helpers/hub.js';
import { postJsonl } from '../helpers/batches.js';
import { b64, solidImage } from '../helpers/images.js';

const ADMIN = 'board-admin-key-0000001';
const TENANT = 'board-tenant-key-000001';
const basic = (key: string, user = 'ops') => ({
  Authorization: `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}`,
});
const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe('the queue board', () => {
  let hub: Hub;
  let redis: Redis;
  let image: string;
  let jobId: string;
  const board = (path = '/') => `${hub.url}/admin/queues${path}`;
  const interactive = encodeURIComponent(modelQueueName('text-direction'));

  beforeAll(async () => {
    hub = await startHub({
      name: 'board',
      models: 'text-direction',
      workers: 0,
      env: { MODELHUB_API_KEYS: `${ADMIN}:ops:admin,${TENANT}:acme`, BATCH_CHUNK_SIZE: '2' },
    });
    redis = new Redis(REDIS_URL);
    image = b64(await solidImage(48, 40, [20, 160, 90]));
    for (let i = 0; i < 3; i++) {
      const r = await postJson(`${hub.url}/v1/models/text-direction/jobs`, { input: { image } }, bearer(TENANT));
      expect(r.status).toBe(202);
      jobId = r.body.id;
    }
    const batch = await postJsonl(
      `${hub.url}/v1/models/text-direction/batches`,
      [0, 1, 2].map(() => JSON.stringify({ image })),
      bearer(TENANT),
    );
    expect(batch.status).toBe(202);
  });
  afterAll(async () => {
    redis?.disconnect();
    await hub?.stop();
  });

  it('opens for admin keys (Basic with the key as password, or Bearer); tenants 403, anonymous 401', async () => {
    for (const headers of [basic(ADMIN), basic(ADMIN, ''), bearer(ADMIN)]) {
      const r = await fetch(board('/'), { headers });
      expect(r.status).toBe(200);
      expect(await r.text()).toContain('<title>ModelHub queues</title>');
    }
    const anonymous = await fetch(board('/'));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="ModelHub queue board"/);
    expect(await anonymous.json()).toMatchObject({ success: false, error_code: 1101 });
    expect((await fetch(board('/'), { headers: basic('not-a-key-of-this-hub') })).status).toBe(401);
    for (const headers of [basic(TENANT), bearer(TENANT)]) {
      const r = await fetch(board('/api/queues'), { headers });
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ success: false, error_code: 1102 });
    }
    // The board's answers are not cached and not framed elsewhere.
    const page = await fetch(board('/'), { headers: basic(ADMIN) });
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it("lists every model's queue, every batch lane and the webhook queue, read-only", async () => {
    const r = await fetch(board('/api/queues'), { headers: basic(ADMIN) });
    expect(r.status).toBe(200);
    const { queues } = (await r.json()) as {
      queues: { name: string; displayName: string; readOnlyMode: boolean; counts: Record<string, number> }[];
    };
    const models = [...hub.api.ctx.models.keys()];
    expect(queues.map((q) => q.name).sort()).toEqual(
      [...models.flatMap((m) => [modelQueueName(m), bulkQueueName(m)]), WEBHOOK_QUEUE].sort(),
    );
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
    const byName = new Map(queues.map((q) => [q.name, q]));
    expect(byName.get(modelQueueName('text-direction'))).toMatchObject({
      displayName: 'text-direction',
      counts: { prioritized: 3 },
    });
    // 3 items in chunks of 2: two chunks wait (their batch parent waits for them).
    expect(byName.get(bulkQueueName('text-direction'))!.counts).toMatchObject({ prioritized: 2 });
  });

  it("shows a job's data with its input image elided", async () => {
    const r = await fetch(board(`/api/queues/${interactive}/${encodeURIComponent(jobId)}`), {
      headers: basic(ADMIN),
    });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).not.toContain(image);
    const { job } = JSON.parse(text) as { job: { id: string; data: { input: { image: string }; tenant: string } } };
    expect(job).toMatchObject({ id: jobId, data: { tenant: 'acme' } });
    expect(job.data.input.image).toBe(`[image: ${image.length} base64 characters, not shown]`);
    // The listing too.
    const list = await (
      await fetch(board(`/api/queues?activeQueue=${interactive}&status=prioritized&page=1&jobsPerPage=10`), {
        headers: basic(ADMIN),
      })
    ).text();
    expect(list).toContain('base64 characters, not shown');
    expect(list).not.toContain(image);
  });

  it("refuses every one of bull-board's mutations server-side, and nothing changes", async () => {
    const queue = new Queue(modelQueueName('text-direction'), { connection: redis, prefix: hub.prefix });
    const before = await queue.getJobCounts();
    const params: Record<string, string> = {
      queueName: interactive,
      jobId: encodeURIComponent(jobId),
      queueStatus: 'prioritized',
      schedulerId: 'none',
    };
    const mutations = appRoutes.api.flatMap((route) =>
      (Array.isArray(route.method) ? route.method : [route.method])
        .filter((m) => m !== 'get')
        .flatMap((method) =>
          (Array.isArray(route.route) ? route.route : [route.route]).map((path) => ({
            method: method.toUpperCase(),
            path: path.replace(/:(\w+)/g, (_, name: string) => params[name]),
          })),
        ),
    );
    // retry, promote, clean, pause, resume, empty, obliterate, add, update-data, priority...
    expect(mutations.length).toBeGreaterThanOrEqual(20);
    for (const { method, path } of mutations) {
      const r = await fetch(board(path), {
        method,
        headers: { ...basic(ADMIN), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', data: {}, options: {}, priority: 1, delay: 1, concurrency: 1 }),
      });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
      expect(((await r.json()) as { error_msg: string }).error_msg).toMatch(/read-only/);
    }
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobCounts()).toEqual(before);
    expect(await queue.getJobState(jobId)).toBe('prioritized');
    await queue.close();
  });

  it('is counted under one route label, whatever bull-board route served it', async () => {
    const page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    const routes = new Set(
      [...page.matchAll(/^modelhub_http_requests_total\{[^}]*route="([^"]*)"/gm)].map((m) => m[1]),
    );
    expect(routes.has('/admin/queues')).toBe(true);
    expect([...routes].filter((r) => r.startsWith('/api') || r.includes(':queueName'))).toEqual([]);
  });
});

describe('the queue board on an open hub', () => {
  it('is open on loopback (every caller is the operator), refused on a public address', async () => {
    const base = { REDIS_URL, MODELHUB_PREFIX: testPrefix('board-open'), LOG_LEVEL: 'silent', API_METRICS_PORT: '0' };
    const local = await startApi(loadConfig({ ...base, HOST: '127.0.0.1', PORT: '0' }));
    try {
      expect((await fetch(`${local.url}/admin/queues/`)).status).toBe(200);
    } finally {
      await local.close();
    }
    const port = await freePort();
    const open = await startApi(
      loadConfig({ ...base, HOST: '0.0.0.0', PORT: String(port), MODELHUB_ALLOW_ANONYMOUS: 'true' }),
    );
    try {
      const r = await fetch(`http://127.0.0.1:${port}/admin/queues/`);
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error_code: 1102, error_msg: expect.stringMatching(/MODELHUB_API_KEYS/) });
    } finally {
      await open.close();
    }
  });
});

describe('board helpers', () => {
  it('reads the key from Basic (the password) or Bearer', () => {
    expect(presentedKey(`Basic ${Buffer.from('anyone:k:with:colons').toString('base64')}`)).toBe('k:with:colons');
    expect(presentedKey(`Basic ${Buffer.from('user-only:').toString('base64')}`)).toBeNull();
    expect(presentedKey('Bearer abc')).toBe('abc');
    expect(presentedKey(undefined)).toBeNull();
  });

  it('elides images, long strings and long arrays, keeping the rest', () => {
    expect(
      elideForBoard({ input: { image: 'A'.repeat(10), first_sequence: 'short' }, body: 'x'.repeat(600), n: 3 }),
    ).toEqual({
      input: { image: '[image: 10 base64 characters, not shown]', first_sequence: 'short' },
      body: '[600 characters, not shown]',
      n: 3,
    });
    expect(elideForBoard({ preds: Array.from({ length: 100 }, () => 0), boxes: [[1, 2, 3, 4]] })).toEqual({
      preds: '[100 items, not shown]',
      boxes: [[1, 2, 3, 4]],
    });
  });
});
