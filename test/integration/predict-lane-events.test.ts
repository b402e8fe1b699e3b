/**
 * A model's predict lane keeps a short BullMQ event stream (PREDICT_LANE_EVENTS_MAX_LEN, not
 * BullMQ's 10,000): its calls are answered by finish notices, and each completed entry's event
 * carries the entry's whole result, so the default kept tens of MB per model for no reader.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_LANE_EVENTS_MAX_LEN } from '../../shared/jobs/retention.js';
import { predictQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';

const MODEL = 'resnet50';

describe("a model's predict lane", () => {
  let hub: Hub;
  const redis = new Redis(REDIS_URL);
  beforeAll(async () => {
    hub = await startHub({ name: 'laneevents', models: MODEL, workers: 0 });
  });
  afterAll(async () => {
    await hub.stop();
    redis.disconnect();
  });

  it('keeps about PREDICT_LANE_EVENTS_MAX_LEN events', async () => {
    const lane = hub.api.ctx.predict.entries.queues.get(MODEL)!;
    await lane.waitUntilReady();
    // The API's reads queue for the lane writes the meta too, at its own start: let both land.
    await new Promise((r) => setTimeout(r, 500));
    const base = `${hub.prefix}:${predictQueueName(MODEL)}`;
    expect(await redis.hget(`${base}:meta`, 'opts.maxLenEvents')).toBe(String(PREDICT_LANE_EVENTS_MAX_LEN));
    // 700 adds write 1,400 events ("added" and "waiting"); the stream is trimmed as it goes
    // (MAXLEN ~: whole nodes of up to 100 events).
    for (let i = 0; i < 7; i++)
      await lane.addBulk(Array.from({ length: 100 }, () => ({ name: 'entry', data: { v: 2, items: [] } as never })));
    const length = await redis.xlen(`${base}:events`);
    expect(length).toBeGreaterThanOrEqual(PREDICT_LANE_EVENTS_MAX_LEN);
    expect(length).toBeLessThanOrEqual(PREDICT_LANE_EVENTS_MAX_LEN + 100);
    await lane.obliterate({ force: true });
  });
});
