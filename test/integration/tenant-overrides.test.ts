/**
 * Per-tenant overrides (MODELHUB_TENANT_LIMITS) through a running API: a tenant with an
 * override gets its own waiting quota, priority ceiling and request rate while another tenant
 * on the same hub gets the defaults. Counted, never timed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const BIG = 'bigcustomer-key-0123456789';
const SMALL = 'smallcustomer-key-0123456';
const TINY = 'tinycustomer-key-01234567';
const BATCHY = 'batchcustomer-key-0123456';

async function call(url: string, method: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

describe('per-tenant limit overrides', () => {
  let hub: Hub;
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(32, 32, [200, 10, 10]));
    hub = await startHub({
      name: 'overrides',
      models: 'resnet50',
      workers: 0, // jobs stay waiting
      env: {
        MODELHUB_API_KEYS: `${BIG}:big,${SMALL}:small,${TINY}:tiny,${BATCHY}:batchy`,
        TENANT_MAX_WAITING: '2',
        TENANT_PRIORITY_CEILING: '4',
        TENANT_RATE_RPS: '2',
        MODELHUB_TENANT_LIMITS: JSON.stringify({
          big: { max_waiting: 5, priority_ceiling: 1, rate_rps: 0 },
          tiny: { max_stored_bytes: 100 },
        }),
      },
    });
  });
  afterAll(async () => hub?.stop());
  const submit = (key: string, extra: Record<string, unknown> = {}) =>
    call(`${hub.url}/v1/models/resnet50/jobs`, 'POST', key, { input: { image }, ...extra });

  it('the overridden tenant gets its own waiting quota and priority ceiling; the other the defaults', async () => {
    const big: number[] = [];
    for (let i = 0; i < 6; i++) big.push((await submit(BIG, { priority: 1 })).status);
    expect(big).toEqual([202, 202, 202, 202, 202, 429]);

    // The default rate (2/s, burst 4) holds for this tenant: at most 4 calls here.
    const small = [await submit(SMALL, { priority: 4 }), await submit(SMALL), await submit(SMALL)];
    expect(small.map((r) => r.status)).toEqual([202, 202, 429]);
    expect(small[2].body).toMatchObject({ error_code: 1402, error_msg: expect.stringMatching(/the limit is 2\)/) });
    const high = await submit(SMALL, { priority: 3 });
    expect(high.status).toBe(400);
    expect(high.body).toMatchObject({ error_code: 1006, error_msg: expect.stringMatching(/\(4\.\.10/) });
  });

  it('a stored-bytes override holds that tenant alone (the default, 256 MiB, holds the others)', async () => {
    const tiny = [await submit(TINY), await submit(TINY)];
    expect(tiny.map((r) => r.status)).toEqual([202, 429]);
    expect(tiny[1].body).toMatchObject({ error_code: 1402 });
  });

  it('the overridden tenant has no request-rate limit (rate_rps 0); the other is held to the default', async () => {
    const flood = async (key: string) =>
      (await Promise.all(Array.from({ length: 20 }, () => call(`${hub.url}/v1/models`, 'GET', key)))).map(
        (r) => r.status,
      );
    expect((await flood(BIG)).filter((s) => s === 200)).toHaveLength(20);
    const small = await flood(SMALL);
    expect(small.filter((s) => s === 429).length).toBeGreaterThanOrEqual(10);
  });

  it('batches are held to the same priority ceiling, and batch calls count against the request rate', async () => {
    const high = await call(`${hub.url}/v1/models/resnet50/batches`, 'POST', BATCHY, {
      inputs: [{ image }],
      priority: 1,
    });
    expect(high.status).toBe(400);
    expect(high.body).toMatchObject({ error_code: 1006, error_msg: expect.stringMatching(/\(4\.\.10/) });
    const polls = (
      await Promise.all(Array.from({ length: 20 }, () => call(`${hub.url}/v1/batches/no-such-batch`, 'GET', BATCHY)))
    ).map((r) => r.status);
    expect(polls.filter((s) => s === 429).length).toBeGreaterThanOrEqual(10);
  });
});
