/**
 * Found by the linter (no-misused-promises): the metrics server's request handler and the
 * background refresh loop were async callbacks nothing awaited. A collector that threw left a
 * scrape unanswered and raised an unhandled rejection (which ends a Node process); a refresh that
 * threw ended the refresh loop for good, so the autoscaling gauge went stale silently.
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

describe('background refresh', () => {
  it('keeps refreshing after a refresh throws', async () => {
    const registry = new Registry();
    let calls = 0;
    const models = (): Iterable<ModelLanes> => {
      calls += 1;
      if (calls === 1) throw new Error('lane list failed');
      return [];
    };
    stops.push(registerBacklog(registry, {} as RedisClient, models, { refreshMs: 5 }));
    await expect.poll(() => calls, { timeout: 2000 }).toBeGreaterThanOrEqual(3);
  });

  it('publishes each lane once it reads again', async () => {
    const registry = new Registry();
    let fail = true;
    const queue = (waiting: number) =>
      ({
        getJobCounts: async () => {
          if (fail) throw new Error('redis down');
          return { waiting, prioritized: 0, delayed: 0 };
        },
        keys: { wait: 'w', prioritized: 'p' },
        toKey: (id: string) => id,
      }) as unknown as Queue;
    const redis = { lindex: async () => null, zrange: async () => [] } as unknown as RedisClient;
    const lanes = [{ model: 'm', interactive: queue(7), bulk: queue(1) }];
    stops.push(registerBacklog(registry, redis, () => lanes, { refreshMs: 5 }));
    await new Promise((r) => setTimeout(r, 30));
    fail = false;
    await expect
      .poll(
        async () =>
          (await registry.metrics()).match(/modelhub_queue_backlog\{model="m",lane="interactive"\} (\d+)/)?.[1],
      )
      .toBe('7');
  });
});
