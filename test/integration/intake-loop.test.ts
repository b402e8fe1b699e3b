/**
 * Issue 28: 20 parallel ~1 MB job bodies must not hold the API's event loop (the target: /healthz
 * within 250 ms throughout). Wall-clock bounds are not asserted (the host is shared and noisy);
 * what is asserted is the structural fact that makes the target reachable: none of a big body's
 * per-byte work runs on the loop. Every body is scanned, parsed, base64-checked and decoded in
 * the parse thread (the pool counts its tasks), its image is stored in the queue without being
 * serialised and re-encoded on the loop (the queue counts the jobs it spliced), what is stored is
 * byte for byte what was sent, and /healthz keeps answering while the bodies are in flight. The
 * latencies and the loop's delay are logged for the record; the figures for the issue come from
 * `npm run bench:intake` (docs/performance.md).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';
import { ImageJobQueue } from '../../api/image-job-queue.js';
import { modelQueueName } from '../../shared/redis/keys.js';

const MODEL = 'mobilenetv2';
const PARALLEL = 20;

/** A ~1 MB body: a 1×1 PNG's header and chunks, ~0.75 MB of filler, then its IEND (valid at the door). */
function bigBody(seed: number): { body: string; image: string } {
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
    'base64',
  );
  const filler = Buffer.alloc(750_000 - png.length, seed);
  const image = Buffer.concat([png.subarray(0, png.length - 12), filler, png.subarray(png.length - 12)]).toString(
    'base64',
  );
  return { body: JSON.stringify({ input: { image } }), image };
}

let hub: Hub;
beforeAll(async () => {
  hub = await startHub({
    name: 'intake-loop',
    workers: 0,
    env: { TENANT_MAX_STORED_BYTES: '0', QUEUE_MAX_WAITING: '1000', MODELHUB_RECONCILE_PERIOD_MS: '0' },
  });
}, 60_000);
afterAll(async () => hub?.stop());

describe('20 parallel ~1 MB job bodies and the event loop', () => {
  it('parses each in the thread, stores its image without re-encoding it, and /healthz answers throughout', async () => {
    const bodies = Array.from({ length: PARALLEL }, (_, i) => bigBody(i + 1));
    expect(bodies[0].body.length).toBeGreaterThan(hub.config.OFFLOOP_PARSE_BYTES);
    const queue = hub.api.ctx.jobs.queues.get(MODEL) as ImageJobQueue;
    expect(queue).toBeInstanceOf(ImageJobQueue);
    const threadTasks = hub.api.ctx.offloop.tasksRun;
    const spliced = queue.imagesSpliced;

    const delay = monitorEventLoopDelay({ resolution: 10 });
    let inFlight = true;
    const health: { status: number; ms: number; duringLoad: boolean }[] = [];
    const probe = (async () => {
      while (inFlight) {
        const t = performance.now();
        const status = (await fetch(`${hub.url}/healthz`)).status;
        health.push({ status, ms: performance.now() - t, duringLoad: inFlight });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    delay.enable();
    const answers = await Promise.all(
      bodies.map(async ({ body }) => {
        const r = await fetch(`${hub.url}/v1/models/${MODEL}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        return { status: r.status, body: (await r.json()) as { id: string } };
      }),
    );
    inFlight = false;
    delay.disable();
    await probe;

    expect(answers.map((a) => a.status)).toEqual(Array(PARALLEL).fill(202));
    // The body-sized steps ran in the parse thread, one task per body...
    expect(hub.api.ctx.offloop.tasksRun - threadTasks).toBe(PARALLEL);
    // ...and the queue copied each image in rather than stringifying and re-encoding it.
    expect(queue.imagesSpliced - spliced).toBe(PARALLEL);
    // What is stored is exactly what was sent (as a worker reads it).
    const connection = new Redis(REDIS_URL);
    const reader = new Queue(modelQueueName(MODEL), { connection, prefix: hub.prefix });
    try {
      for (const [i, a] of answers.entries()) {
        const job = await reader.getJob(a.body.id);
        expect(job?.data.input.image === bodies[i].image).toBe(true);
      }
    } finally {
      await reader.close();
      connection.disconnect();
    }
    const during = health.filter((h) => h.duringLoad);
    expect(during.length).toBeGreaterThan(0);
    expect(health.every((h) => h.status === 200)).toBe(true);
    console.log(
      `intake-loop test: ${PARALLEL} × ${(bodies[0].body.length / 1e6).toFixed(2)} MB; /healthz ${during.length} answers during the load, ` +
        `max ${Math.max(...health.map((h) => h.ms)).toFixed(0)} ms; loop delay max ${(delay.max / 1e6).toFixed(0)} ms ` +
        `(this process also sends the bodies; not asserted: see docs/performance.md)`,
    );
  }, 120_000);
});
