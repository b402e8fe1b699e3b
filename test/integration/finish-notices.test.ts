/**
 * Finish notices (issue 22): a worker tells only the API instance that waits for a call that it
 * finished, on that instance's own channel, instead of every instance reading every completion
 * through QueueEvents. Counted here: each replica hears exactly its own notices. An API of the
 * previous release, which reads a stream of its own, is still told there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../api/server.js';
import { metricValue, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { Redis } from 'ioredis';
import { channelReplyTo, sendFinishNotice } from '../../shared/jobs/finish-notices.js';
import { finishNoticesChannel, finishNoticesKey } from '../../shared/redis/keys.js';

const MODEL = 'resnet50';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as any };
}

async function untilEntriesServed(api: RunningApi): Promise<void> {
  const fleet = api.ctx.predict.fleet;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
    await fleet.refresh();
    if (fleet.serves(MODEL)) return;
  }
  throw new Error('no worker reading entries');
}

/** Queue entries (predict calls alone or coalesced, and submits with Prefer: wait) this API sent. */
async function entriesSent(api: RunningApi, waitedJobs: number): Promise<number> {
  const page = await (await fetch(`${api.metricsUrl}/metrics`)).text();
  return metricValue(page, 'modelhub_predict_entry_items_count', { model: MODEL }) + waitedJobs;
}

describe('two API replicas behind one Redis', () => {
  let hub: Hub;
  let second: RunningApi;
  beforeAll(async () => {
    hub = await startHub({ name: 'notices', models: MODEL, env: { MODELHUB_PREDICT_COALESCE_MS: '50' } });
    second = await startApi(hub.config);
    await untilEntriesServed(hub.api);
    await untilEntriesServed(second);
  });
  afterAll(async () => {
    await second?.close();
    await hub?.stop();
  });

  it('each is subscribed to its own channel from start-up, before its first call', async () => {
    const admin = new Redis(hub.config.REDIS_URL);
    try {
      for (const api of [hub.api, second]) {
        const channel = finishNoticesChannel(hub.prefix, api.ctx.jobs.waits.instance);
        for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(50))
          if ((await admin.pubsub('NUMSUB', channel))[1] === 1) break;
        expect(await admin.pubsub('NUMSUB', channel)).toEqual([channel, 1]);
      }
      expect(hub.api.ctx.jobs.waits.received + second.ctx.jobs.waits.received).toBe(0);
    } finally {
      admin.disconnect();
    }
  });

  it('each reads only the notices of its own calls, and no replica reads the queues’ event streams', async () => {
    const images = await Promise.all([1, 2, 3].map((k) => solidImage(32, 32, [k * 70, 40, 90])));
    const run = async (api: RunningApi) => {
      const predicts = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          post(`${api.url}/v1/models/${MODEL}/predict`, { image: b64(images[i % 3]) }),
        ),
      );
      const waited = await Promise.all(
        [0, 1, 2].map((i) =>
          post(`${api.url}/v1/models/${MODEL}/jobs`, { input: { image: b64(images[i]) } }, { prefer: 'wait=20' }),
        ),
      );
      return { predicts, waited };
    };
    const [a, b] = await Promise.all([run(hub.api), run(second)]);
    for (const r of [a, b]) {
      for (const p of r.predicts) expect(p.status).toBe(200);
      for (const w of r.waited) expect(w.body.status).toBe('succeeded');
    }
    const readA = hub.api.ctx.jobs.waits.received;
    const readB = second.ctx.jobs.waits.received;
    // One notice per queue entry the replica sent, none of the other's.
    expect(readA).toBe(await entriesSent(hub.api, 3));
    expect(readB).toBe(await entriesSent(second, 3));
    expect(readA).toBeLessThanOrEqual(13);
    expect(hub.api.ctx.jobs.finishes.streamsOpen).toBe(0);
    expect(second.ctx.jobs.finishes.streamsOpen).toBe(0);

    // Pollers are unchanged: GET with Prefer: wait on a job the other replica submitted.
    const job = await post(`${second.url}/v1/models/${MODEL}/jobs`, { input: { image: b64(images[0]) } });
    const read = await fetch(`${hub.url}/v1/jobs/${job.body.id}`, { headers: { prefer: 'wait=20' } });
    expect(((await read.json()) as any).status).toBe('succeeded');
  }, 60_000);
});

describe('across a Redis restart', () => {
  let redis: PrivateRedis;
  let hub: Hub;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    hub = await startHub({
      name: 'notices-restart',
      models: MODEL,
      env: { REDIS_URL: redis.url },
    });
  });
  afterAll(async () => {
    await hub?.stop();
    await redis?.cleanup();
  });

  it('notices flow again after the restart, each call answered by its own notice', async () => {
    const image = b64(await solidImage(40, 40, [200, 30, 60]));
    const url = `${hub.url}/v1/models/${MODEL}/predict`;
    expect((await post(url, { image })).status).toBe(200);
    expect(hub.api.ctx.jobs.waits.received).toBe(1);
    await redis.stop();
    expect((await post(url, { image })).status).toBe(503);
    await redis.start();
    for (const deadline = Date.now() + 30_000; (await post(url, { image })).status !== 200; await sleep(200))
      if (Date.now() > deadline) throw new Error('predict did not recover after the restart');
    // A call finished while the subscription was still being made again was answered by reading
    // its job back; once a notice is heard the subscription is back.
    for (let heard = hub.api.ctx.jobs.waits.received, deadline = Date.now() + 30_000; ; await sleep(200)) {
      expect((await post(url, { image })).status).toBe(200);
      if (hub.api.ctx.jobs.waits.received > heard) break;
      heard = hub.api.ctx.jobs.waits.received;
      if (Date.now() > deadline) throw new Error('no finish notice heard after the restart');
    }
    // Every later call is answered by its notice.
    const after = hub.api.ctx.jobs.waits.received;
    for (let i = 0; i < 3; i++) expect((await post(url, { image })).status).toBe(200);
    expect(hub.api.ctx.jobs.waits.received).toBe(after + 3);
  }, 90_000);
});

describe('how a worker tells the waiting instance', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.cleanup();
  });

  it('publishes on the channel of an instance of this release, storing nothing; appends to the stream of one of the previous release', async () => {
    const prefix = `notices-${process.pid}`;
    const client = new Redis(redis.url);
    const listener = new Redis(redis.url);
    try {
      const heard: string[] = [];
      listener.on('message', (channel: string, message: string) => heard.push(`${channel} ${message}`));
      await listener.subscribe(finishNoticesChannel(prefix, 'inst-a'));
      const notice = { id: 'e1', event: 'completed' as const, returnvalue: { v: 1 } };
      expect(await sendFinishNotice(client, prefix, channelReplyTo('inst-a'), notice)).toBe(true);
      for (const deadline = Date.now() + 5000; heard.length === 0 && Date.now() < deadline;) await sleep(20);
      expect(heard).toEqual([`${finishNoticesChannel(prefix, 'inst-a')} ${JSON.stringify(notice)}`]);
      expect(await client.keys(`${prefix}:*`)).toEqual([]);

      // The previous release's API names itself bare and reads its stream.
      const failed = { id: 'e2', event: 'failed' as const, failedReason: 'boom' };
      expect(await sendFinishNotice(client, prefix, 'inst-b', failed)).toBe(true);
      const stream = (await client.xrange(finishNoticesKey(prefix, 'inst-b'), '-', '+')).map(([, f]) => f);
      expect(stream).toEqual([['n', JSON.stringify(failed)]]);
      expect(await client.ttl(finishNoticesKey(prefix, 'inst-b'))).toBeGreaterThan(3000);
      expect(heard).toHaveLength(1);
    } finally {
      client.disconnect();
      listener.disconnect();
    }
  });
});
