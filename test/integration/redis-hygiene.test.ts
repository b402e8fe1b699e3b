/**
 * Redis hygiene: a finished job gives up its input, a failed add leaves no index entry behind,
 * /readyz fails when Redis refuses writes, and Redis's own error text never reaches a client.
 */
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startPrivateRedis } from '../helpers/redis-server.js';

async function keysMatching(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('job data in Redis', () => {
  let hub: Hub;
  const redis = new Redis(REDIS_URL);
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(200, 150, [30, 60, 90]));
    hub = await startHub({ name: 'hygiene', models: 'resnet50' });
  });
  afterAll(async () => {
    await hub?.stop();
    redis.disconnect();
  });

  it('a finished job drops its input and keeps its result', async () => {
    const { body } = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
    const job = await pollJob(hub.url, body.id);
    expect(job.status).toBe('succeeded');
    const key = `${hub.prefix}:{model.resnet50}:${body.id}`;
    // Dropping is not awaited by the worker: give it a moment.
    for (let i = 0; i < 50 && JSON.parse((await redis.hget(key, 'data'))!).input_dropped !== true; i++)
      await new Promise((r) => setTimeout(r, 50));
    const data = JSON.parse((await redis.hget(key, 'data'))!);
    expect(data).toMatchObject({ model: 'resnet50', input: {}, input_dropped: true });
    expect((await redis.hget(key, 'data'))!.length).toBeLessThan(300);
    expect((await getJson(`${hub.url}/v1/jobs/${body.id}`)).body).toMatchObject({
      status: 'succeeded',
      output: { success: true },
    });
  });

  it('an add that fails leaves no index entry pointing at nothing, and the client sees no Redis internals', async () => {
    const before = await keysMatching(redis, `${hub.prefix}:jobindex:*`);
    const queue = hub.api.ctx.jobs.queues.get('resnet50')!;
    const add = queue.add.bind(queue);
    queue.add = async () => {
      throw new Error('ERR Error running script (call to f_4f2e): @user_script:583: OOM command not allowed');
    };
    try {
      const r = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ success: false, error_code: 1501 });
      expect(r.body.error_msg).not.toMatch(/OOM|script|ERR/);
    } finally {
      queue.add = add;
    }
    expect((await keysMatching(redis, `${hub.prefix}:jobindex:*`)).sort()).toEqual(before.sort());
  });
});

describe('a Redis that refuses writes', () => {
  it('makes /readyz fail although Redis still answers PING', async () => {
    const server = await startPrivateRedis();
    const hub = await startHub({ name: 'readyoom', models: 'resnet50', workers: 0, env: { REDIS_URL: server.url } });
    const admin = new Redis(server.url);
    try {
      expect((await getJson(`${hub.url}/readyz`)).status).toBe(200);
      await admin.config('SET', 'maxmemory', '1');
      expect(await admin.ping()).toBe('PONG');
      const r = await getJson(`${hub.url}/readyz`);
      expect(r.status).toBe(503);
      expect(JSON.stringify(r.body)).not.toMatch(/OOM/);
      await admin.config('SET', 'maxmemory', '0');
      expect((await getJson(`${hub.url}/readyz`)).status).toBe(200);
    } finally {
      admin.disconnect();
      await hub.stop();
      await server.cleanup();
    }
  });
});

describe('job reads', () => {
  it('read only the fields a view needs: polling a queued job never transfers its input', async () => {
    const hub = await startHub({ name: 'readfields', models: 'resnet50', workers: 0 });
    try {
      // ~3 MB of incompressible pixels.
      const noise = Buffer.alloc(1000 * 1000 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const png = await sharp(noise, { raw: { width: 1000, height: 1000, channels: 3 } })
        .png({ compressionLevel: 0 })
        .toBuffer();
      expect(png.length).toBeGreaterThan(2_900_000);
      const { status, body } = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image: b64(png) } });
      expect(status).toBe(202);
      const reader = (hub.api.ctx.jobs as unknown as { reader: Redis }).reader;
      const before = reader.stream.bytesRead;
      for (let i = 0; i < 5; i++)
        expect((await getJson(`${hub.url}/v1/jobs/${body.id}`)).body).toMatchObject({ id: body.id, status: 'queued' });
      // Five whole-hash reads would be ~20 MB (base64); the view's fields are a few hundred bytes.
      expect(reader.stream.bytesRead - before).toBeLessThan(50_000);
    } finally {
      await hub.stop();
    }
  });
});
