/**
 * Found by the linter (no-misused-promises): the metrics server's request handler and the
 * background refresh loop were async callbacks nothing awaited. A collector that threw left a
 * scrape unanswered and raised an unhandled rejection (which ends a Node process); a refresh that
 * threw ended the refresh loop for good, so the autoscaling gauge went stale silently.
 * Issue 26: the queue gauges are read when scraped (the background loop served values up to
 * 5 s old); scrapes share reads, and a hung read never holds a scrape.
 */
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerBacklog, serveMetrics, type ModelLanes } from '../../shared/metrics.js';
import type { RedisClient } from '../../shared/redis/connection.js';

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

describe('metrics server', () => {
  it('answers 500 when a collector throws, and keeps serving', async () => {
    const registry = new Registry();
    let broken = true;
    new Gauge({
      name: 'flaky',
      help: 'a collector that fails once',
      registers: [registry],
      collect() {
        if (broken) throw new Error('collector failed');
      },
    });
    const server = await serveMetrics(registry, 0, '127.0.0.1');
    stops.push(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const failed = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(failed.status).toBe(500);
    expect(await failed.text()).toMatch(/collector failed/);

    broken = false;
    const ok = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^flaky 0$/m);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

describe('queue gauges read on scrape', () => {
  const backlogOf = (page: string, lane = 'interactive') =>
    page.match(new RegExp(`modelhub_queue_backlog\\{model="m",lane="${lane}"\\} (\\d+)`))?.[1];
  const redis = { lindex: async () => null, zrange: async () => [] } as unknown as RedisClient;
  /** A lane whose counts come from `counts()`; `reads` counts the Redis reads it was asked for. */
  const lane = (counts: () => Promise<number>) => {
    const stats = { reads: 0 };
    const queue = {
      getJobCounts: async () => {
        stats.reads++;
        return { waiting: await counts(), prioritized: 0, delayed: 0 };
      },
      keys: { wait: 'w', prioritized: 'p' },
      toKey: (id: string) => id,
    } as unknown as Queue;
    return { queue, stats };
  };

  it('a read that throws fails neither that scrape nor the ones after it', async () => {
    const registry = new Registry();
    let calls = 0;
    const models = (): Iterable<ModelLanes> => {
      calls += 1;
      if (calls === 1) throw new Error('lane list failed');
      return [];
    };
    registerBacklog(registry, {} as RedisClient, models);
    await registry.metrics();
    await registry.metrics();
    expect(calls).toBe(2);
  });

  it('publishes each lane once it reads again', async () => {
    const registry = new Registry();
    let fail = true;
    const counts = async () => {
      if (fail) throw new Error('redis down');
      return 7;
    };
    const lanes = [{ model: 'm', interactive: lane(counts).queue, bulk: lane(async () => 1).queue }];
    registerBacklog(registry, redis, () => lanes);
    expect(backlogOf(await registry.metrics())).toBeUndefined();
    fail = false;
    expect(backlogOf(await registry.metrics())).toBe('7');
  });

  it('answers the queue as it is at the scrape, not as it was at an earlier read', async () => {
    const registry = new Registry();
    let waiting = 3;
    const lanes = [{ model: 'm', interactive: lane(async () => waiting).queue, bulk: lane(async () => 0).queue }];
    registerBacklog(registry, redis, () => lanes);
    expect(backlogOf(await registry.metrics())).toBe('3');
    waiting = 40;
    expect(backlogOf(await registry.metrics())).toBe('40');
  });

  it('scrapes at once share one read, and a scrape within maxAgeMs of it takes its values', async () => {
    const registry = new Registry();
    let clock = 0;
    let waiting = 5;
    const interactive = lane(async () => waiting);
    const lanes = [{ model: 'm', interactive: interactive.queue, bulk: lane(async () => 0).queue }];
    registerBacklog(registry, redis, () => lanes, { maxAgeMs: 1000, now: () => clock });
    const pages = await Promise.all([registry.metrics(), registry.metrics(), registry.metrics()]);
    expect(pages.map((p) => backlogOf(p))).toEqual(['5', '5', '5']);
    expect(interactive.stats.reads).toBe(1);
    waiting = 9;
    clock = 999;
    expect(backlogOf(await registry.metrics())).toBe('5');
    expect(interactive.stats.reads).toBe(1);
    clock = 1000;
    expect(backlogOf(await registry.metrics())).toBe('9');
    expect(interactive.stats.reads).toBe(2);
  });

  it('a read that hangs (Redis stuck) lets the scrape answer the last values after timeoutMs', async () => {
    const registry = new Registry();
    let hang = false;
    const counts = () => (hang ? new Promise<number>(() => undefined) : Promise.resolve(4));
    const lanes = [{ model: 'm', interactive: lane(counts).queue, bulk: lane(async () => 0).queue }];
    registerBacklog(registry, redis, () => lanes, { timeoutMs: 20 });
    expect(backlogOf(await registry.metrics())).toBe('4');
    hang = true;
    expect(backlogOf(await registry.metrics())).toBe('4');
  });
});
