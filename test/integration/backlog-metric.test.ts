/**
 * The autoscaling signal against a real Redis: jobs queued with a priority live in BullMQ's
 * `prioritized` sorted set, so `LLEN <queue>:wait` (what KEDA's Redis list scaler reads) says 0
 * while the API's modelhub_queue_backlog counts every one of them.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkQueueName, modelQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, metricValue, postJson, startHub, type Hub } from '../helpers/hub.js';
import { postJsonl } from '../helpers/batches.js';
import { b64, solidImage } from '../helpers/images.js';

describe('backlog metric (no workers: everything stays queued)', () => {
  let hub: Hub;
  let redis: Redis;
  beforeAll(async () => {
    hub = await startHub({ name: 'backlog', models: 'resnet50', workers: 0, env: { BATCH_CHUNK_SIZE: '10' } });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await hub?.stop();
  });

  it('counts prioritized jobs and batch chunks that LLEN wait does not see', async () => {
    const image = b64(await solidImage(32, 32, [10, 200, 10]));
    for (let i = 0; i < 25; i++) {
      const r = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image }, priority: 1 + (i % 10) });
      expect(r.status).toBe(202);
    }
    const batch = await postJsonl(
      `${hub.url}/v1/models/resnet50/batches`,
      Array.from({ length: 35 }, () => JSON.stringify({ image })),
    );
    expect(batch.status).toBe(202);

    // What a list-length trigger would read:
    expect(await redis.llen(`${hub.prefix}:${modelQueueName('resnet50')}:wait`)).toBe(0);
    expect(await redis.llen(`${hub.prefix}:${bulkQueueName('resnet50')}:wait`)).toBe(0);
    expect(await redis.zcard(`${hub.prefix}:${modelQueueName('resnet50')}:prioritized`)).toBe(25);

    // Read when scraped, on the API's metrics listener; the oldest-job gauges need a second to pass.
    let page = '';
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
      const age = (lane: string) =>
        page.includes('modelhub_queue_oldest_waiting_seconds')
          ? metricValue(page, 'modelhub_queue_oldest_waiting_seconds', { model: 'resnet50', lane })
          : 0;
      if (age('interactive') >= 1 && age('bulk') >= 1) break;
    }
    expect(metricValue(page, 'modelhub_queue_backlog', { model: 'resnet50', lane: 'interactive' })).toBe(25);
    // 35 items in chunks of 10: 4 queue entries (the batch's parent waits for them, uncounted).
    expect(metricValue(page, 'modelhub_queue_backlog', { model: 'resnet50', lane: 'bulk' })).toBe(4);
    expect(
      metricValue(page, 'modelhub_queue_oldest_waiting_seconds', { model: 'resnet50', lane: 'interactive' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(page, 'modelhub_queue_oldest_waiting_seconds', { model: 'resnet50', lane: 'bulk' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('backlog metric freshness', () => {
  let hub: Hub;
  beforeAll(async () => {
    // A long refresh period: scrapes within it share a read, but nothing is read before a scrape.
    hub = await startHub({
      name: 'backlog-fresh',
      models: 'resnet50',
      workers: 0,
      env: { API_METRICS_REFRESH_MS: '600000' },
    });
  });
  afterAll(async () => hub?.stop());

  it('a scrape answers the queue as it is at that scrape, not as it was when the API started', async () => {
    // (Before issue 26 the gauge was refreshed in the background from start-up: 0 here for ten minutes.)
    const image = b64(await solidImage(32, 32, [10, 20, 200]));
    for (let i = 0; i < 12; i++) {
      expect((await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } })).status).toBe(202);
    }
    const page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    expect(metricValue(page, 'modelhub_queue_backlog', { model: 'resnet50', lane: 'interactive' })).toBe(12);
    expect(metricValue(page, 'modelhub_queue_jobs', { model: 'resnet50', state: 'prioritized' })).toBe(12);
  });
});
