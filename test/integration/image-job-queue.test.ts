/**
 * The API's queue stores a large image's job from bytes spliced together (api/image-job-queue.ts):
 * what lands in Redis must be exactly what BullMQ's own JSON.stringify would have stored, and a
 * plain Queue (as the worker reads) must read the same data back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ImageJobQueue, SPLICE_MIN_CHARS, serialiseWithImage } from '../../api/image-job-queue.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';

const prefix = testPrefix('image-job-queue');
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const writer = new ImageJobQueue('m', { connection: redis, prefix });
const reader = new Queue('m', { connection: redis, prefix });

afterAll(async () => {
  await writer.close();
  await reader.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const image = Buffer.alloc(SPLICE_MIN_CHARS, 0xa7).toString('base64');

describe('ImageJobQueue', () => {
  it('serialises to the bytes of JSON.stringify, whatever else the data holds', () => {
    const data = {
      v: 2,
      model: 'm',
      input: { image, top_k: 3, note: 'quote " backslash \\ é ✓ \u0001' },
      tenant: 'ténant',
      webhook: { url: 'https://x/"y"', events: ['completed'] },
    };
    expect(serialiseWithImage(data, image).equals(Buffer.from(JSON.stringify(data), 'utf8'))).toBe(true);
  });

  it('stores a large image job exactly as BullMQ would, read back by a plain Queue', async () => {
    const data = { v: 2, model: 'm', input: { image: `${image}QQ==`, top_k: 5 }, tenant: null };
    const job = await writer.add('infer', data, { jobId: 'big', priority: 5 });
    expect(job.data).toEqual(data);
    expect(await redis.hget(`${prefix}:m:big`, 'data')).toBe(JSON.stringify(data));
    expect((await reader.getJob('big'))!.data).toEqual(data);
  });

  it('leaves small images and non-base64 strings to BullMQ (same stored bytes)', async () => {
    const small = { v: 2, model: 'm', input: { image: 'AAAA' }, tenant: 't' };
    // Not base64 (a quote and a non-ASCII character): spliced raw, it would be invalid JSON.
    const odd = { v: 2, model: 'm', input: { image: `${image}"é` }, tenant: 't' };
    for (const [id, data] of [
      ['small', small],
      ['odd', odd],
    ] as const) {
      await writer.add('infer', data, { jobId: id });
      expect(await redis.hget(`${prefix}:m:${id}`, 'data')).toBe(JSON.stringify(data));
      expect((await reader.getJob(id))!.data).toEqual(data);
    }
  });
});
