/**
 * worker/probing-worker.ts against the installed BullMQ: a job is fetched by one full fetch
 * script, not three, and asking before the next fetch never leaves a job waiting (the fetch-probe
 * and the marker's removal are one script; the interleaving that would lose a wake-up is forced
 * below). Each worker blocks far longer than any test waits (`drainDelay`), so a lost wake-up
 * fails the test instead of being hidden by the blocking pop's timeout.
 */
import { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ProbingWorker } from '../../worker/probing-worker.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';

const prefix = testPrefix('probing-worker');
const connection = () => new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const closing: { close(): Promise<void> }[] = [];
let queueNumber = 0;

afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  for (const c of closing.reverse()) await c.close();
  await deletePrefix(prefix);
});

/** A queue and a ProbingWorker on it that records what it ran (after `run`, when given). */
function lane(concurrency = 4, run: (id: string) => Promise<void> = async () => undefined) {
  const name = `q${queueNumber++}`;
  const queue = new Queue(name, { connection: connection(), prefix });
  const ran: string[] = [];
  const worker = new ProbingWorker(
    name,
    async (job) => {
      await run(job.id!);
      ran.push(job.id!);
      return job.data;
    },
    { connection: connection(), prefix, concurrency, drainDelay: 120, autorun: false },
  );
  closing.push(queue, worker);
  return { queue, worker, ran };
}

const fetchScripts = () =>
  vi.spyOn(Worker.prototype as unknown as { moveToActive: () => Promise<unknown> }, 'moveToActive');

describe('ProbingWorker', () => {
  it('fetches each of jobs added one at a time with one fetch script (BullMQ alone: three, two of them empty), and their finishes fetch nothing', async () => {
    const fetches = fetchScripts();
    const finishes = vi.spyOn(Job.prototype, 'moveToCompleted');
    // Each run takes a moment, so the worker has probed the queue (empty) before it finishes.
    const { queue, worker, ran } = lane(4, () => new Promise((r) => setTimeout(r, 50)));
    await worker.waitUntilReady();
    void worker.run();
    const n = 20;
    for (let k = 0; k < n; k++) {
      await queue.add('j', { k }, { jobId: `j${k}` });
      await expect.poll(() => ran.length, { timeout: 5000, interval: 5 }).toBe(k + 1);
      // Let the worker settle into its blocking pop before the next add.
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(ran).toEqual(Array.from({ length: n }, (_, k) => `j${k}`));
    // One per job, plus the first fetch on start (an empty queue).
    expect(fetches.mock.calls.length).toBeLessThanOrEqual(n + 1);
    // A finish on a queue last seen empty does not try to fetch the next job in its script (a
    // loaded host may let a finish overtake the probe now and then).
    const fetchingFinishes = finishes.mock.calls.filter(([, , fetchNext]) => fetchNext).length;
    expect(finishes.mock.calls.length).toBe(n);
    expect(fetchingFinishes).toBeLessThanOrEqual(2);
  });

  it('a job added between the probe and the blocking pop still wakes the worker', async () => {
    const { queue, worker, ran } = lane();
    const probe = Object.getOwnPropertyDescriptor(ProbingWorker.prototype, 'mayHaveJob')!.value as (
      this: ProbingWorker,
    ) => Promise<boolean>;
    let addedAfterProbe = false;
    vi.spyOn(
      ProbingWorker.prototype as unknown as { mayHaveJob: () => Promise<boolean> },
      'mayHaveJob',
    ).mockImplementation(async function (this: ProbingWorker) {
      const mayHave = await probe.call(this);
      // The probe found the queue empty and dropped the marker: a job arrives now, before the
      // worker blocks on the marker.
      if (!mayHave && !addedAfterProbe) {
        addedAfterProbe = true;
        await queue.add('late', {}, { jobId: 'late' });
      }
      return mayHave;
    });
    await worker.waitUntilReady();
    void worker.run();
    await queue.add('first', {}, { jobId: 'first' });
    await expect.poll(() => ran, { timeout: 10_000, interval: 10 }).toEqual(['first', 'late']);
    expect(addedAfterProbe).toBe(true);
  });

  it('takes a burst up to its concurrency at once, and a delayed job added while it is idle', async () => {
    // Each of the burst's first four jobs waits until all four run: a probe that wrongly said
    // "empty" would leave three waiting (the finish's own fetch would then take them one by one).
    let running = 0;
    let allFour!: () => void;
    const together = new Promise<void>((r) => (allFour = r));
    const { queue, worker, ran } = lane(4, async (id) => {
      if (!id.startsWith('b') || Number(id.slice(1)) >= 4) return;
      if (++running === 4) allFour();
      await together;
    });
    await worker.waitUntilReady();
    void worker.run();
    await queue.addBulk(Array.from({ length: 10 }, (_, k) => ({ name: 'b', data: { k }, opts: { jobId: `b${k}` } })));
    await expect.poll(() => ran.length, { timeout: 10_000, interval: 10 }).toBe(10);
    await queue.add('d', {}, { jobId: 'late-d', delay: 300 });
    await queue.add('p', {}, { jobId: 'late-p', priority: 3 });
    await expect.poll(() => [...ran].sort().slice(-2), { timeout: 10_000, interval: 10 }).toEqual(['late-d', 'late-p']);
  });
});
