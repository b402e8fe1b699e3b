import { describe, expect, it } from 'vitest';
import { DynamicBatcher, type ItemOutcome } from '../../worker/batcher.js';

function recorder<T>(delayMs = 0, fail?: (item: T) => boolean) {
  const batches: T[][] = [];
  const run = async (items: T[]): Promise<ItemOutcome<string>[]> => {
    batches.push(items);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    return items.map((it) =>
      fail?.(it) ? { ok: false, error: new Error(`bad ${String(it)}`) } : { ok: true, value: `done ${String(it)}` },
    );
  };
  return { batches, run };
}

describe('DynamicBatcher', () => {
  it('flushes as soon as a batch is full, without waiting for the delay', async () => {
    const r = recorder<number>();
    const b = new DynamicBatcher(r.run, { maxBatchSize: 4, maxDelayMs: 10_000 });
    const started = Date.now();
    const results = await Promise.all([1, 2, 3, 4].map((i) => b.submit(i)));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.batches).toEqual([[1, 2, 3, 4]]);
    expect(results).toEqual(['done 1', 'done 2', 'done 3', 'done 4']);
  });

  it('runs a job at once when the backend is idle: no timer holds it', async () => {
    const r = recorder<number>();
    const b = new DynamicBatcher(r.run, { maxBatchSize: 8, maxDelayMs: 60_000 });
    await expect(b.submit(1)).resolves.toBe('done 1');
    expect(r.batches).toEqual([[1]]);
  });

  it('gathers items submitted in the same tick into one batch', async () => {
    const r = recorder<number>();
    const b = new DynamicBatcher(r.run, { maxBatchSize: 8, maxDelayMs: 60_000 });
    await Promise.all([1, 2, 3].map((i) => b.submit(i)));
    expect(r.batches).toEqual([[1, 2, 3]]);
  });

  it('with a minimum batch, waits for it while idle, up to max delay after the first item', async () => {
    const r = recorder<number>();
    const b = new DynamicBatcher(r.run, { maxBatchSize: 8, maxDelayMs: 30, minBatchSize: 3 });
    const p1 = b.submit(1);
    await new Promise((res) => setTimeout(res, 10));
    const p2 = b.submit(2);
    await new Promise((res) => setImmediate(res));
    expect(r.batches).toEqual([]);
    await Promise.all([p1, p2]);
    expect(r.batches).toEqual([[1, 2]]);
  });

  it('with a minimum batch, runs as soon as the minimum is reached', async () => {
    const r = recorder<number>();
    const b = new DynamicBatcher(r.run, { maxBatchSize: 8, maxDelayMs: 60_000, minBatchSize: 2 });
    const p1 = b.submit(1);
    await new Promise((res) => setTimeout(res, 5));
    expect(r.batches).toEqual([]);
    await Promise.all([p1, b.submit(2)]);
    expect(r.batches).toEqual([[1, 2]]);
  });

  it('closes a batch at the first item of another shape, keeping arrival order (one run per shape)', async () => {
    const r = recorder<string>(5);
    const b = new DynamicBatcher(r.run, { maxBatchSize: 8, maxDelayMs: 20, minBatchSize: 8, batchKey: (s) => s[0] });
    await Promise.all(['a1', 'a2', 'b1', 'a3', 'a4', 'b2', 'b3'].map((i) => b.submit(i)));
    expect(r.batches).toEqual([['a1', 'a2'], ['b1'], ['a3', 'a4'], ['b2', 'b3']]);
  });

  it('a batch closed by a shape change runs without waiting for the minimum or the delay', async () => {
    const r = recorder<string>();
    const b = new DynamicBatcher(r.run, {
      maxBatchSize: 8,
      maxDelayMs: 60_000,
      minBatchSize: 4,
      batchKey: (s) => s[0],
    });
    const first = b.submit('a1');
    b.submit('b1').catch(() => undefined);
    await expect(first).resolves.toBe('done a1');
    expect(r.batches).toEqual([['a1']]);
    await b.drain();
  });

  it('splits more items than max_batch_size into several batches, in arrival order', async () => {
    const r = recorder<number>(5);
    const b = new DynamicBatcher(r.run, { maxBatchSize: 3, maxDelayMs: 1 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => b.submit(i)));
    expect(r.batches.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Math.max(...r.batches.map((x) => x.length))).toBeLessThanOrEqual(3);
    expect(r.batches.length).toBe(3);
  });

  it('runs one batch at a time and gathers arrivals meanwhile into the next', async () => {
    let running = 0;
    let maxRunning = 0;
    const batches: number[][] = [];
    const b = new DynamicBatcher<number, number>(
      async (items) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        batches.push(items);
        await new Promise((r) => setTimeout(r, 30));
        running -= 1;
        return items.map((value) => ({ ok: true, value }));
      },
      { maxBatchSize: 16, maxDelayMs: 0 },
    );
    const first = b.submit(0);
    await new Promise((r) => setTimeout(r, 5));
    // These arrive while batch [0] runs: they gather, and go together the moment it ends.
    const rest = [1, 2, 3, 4].map((i) => b.submit(i));
    await Promise.all([first, ...rest]);
    expect(maxRunning).toBe(1);
    expect(batches).toEqual([[0], [1, 2, 3, 4]]);
  });

  it('fails only the items the runner failed', async () => {
    const r = recorder<number>(0, (i) => i === 2);
    const b = new DynamicBatcher(r.run, { maxBatchSize: 4, maxDelayMs: 1 });
    const settled = await Promise.allSettled([1, 2, 3].map((i) => b.submit(i)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('bad 2');
  });

  it('rejects every item of a batch whose runner throws, and keeps working afterwards', async () => {
    let calls = 0;
    const b = new DynamicBatcher<number, number>(
      async (items) => {
        calls += 1;
        if (calls === 1) throw new Error('backend down');
        return items.map((value) => ({ ok: true, value }));
      },
      { maxBatchSize: 2, maxDelayMs: 1 },
    );
    const first = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(first.every((s) => s.status === 'rejected')).toBe(true);
    await expect(b.submit(3)).resolves.toBe(3);
  });

  it('closes a batch before its cost budget is exceeded (an item alone always fits)', async () => {
    const r = recorder<number>();
    // Cost like padded tokens: batch size × longest item.
    const b = new DynamicBatcher(r.run, {
      maxBatchSize: 10,
      maxDelayMs: 5,
      maxBatchCost: 100,
      batchCost: (items) => items.length * Math.max(...items),
    });
    await Promise.all([10, 20, 30, 40, 200, 5].map((i) => b.submit(i)));
    for (const batch of r.batches) {
      if (batch.length > 1) expect(batch.length * Math.max(...batch)).toBeLessThanOrEqual(100);
    }
    expect(r.batches.flat()).toEqual([10, 20, 30, 40, 200, 5]);
    expect(r.batches).toContainEqual([200]);
  });

  it('a result that is still a promise (postprocessing) does not hold the next batch', async () => {
    const started: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new DynamicBatcher<number, number>(
      async (items) => {
        started.push(items);
        return items.map((i) => ({ ok: true, value: gate.then(() => i * 10) }));
      },
      { maxBatchSize: 1, maxDelayMs: 0 },
    );
    const first = b.submit(1);
    const second = b.submit(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([[1], [2]]); // the second batch ran while the first's result was pending
    release();
    await expect(Promise.all([first, second])).resolves.toEqual([10, 20]);
  });

  it('a runner that leaves an item without an outcome fails the batch instead of hanging it', async () => {
    const b = new DynamicBatcher<number, number>(
      async (items) => [{ ok: true, value: items[0] }, ...new Array(items.length - 1)],
      { maxBatchSize: 3, maxDelayMs: 1 },
    );
    const settled = await Promise.allSettled([b.submit(1), b.submit(2), b.submit(3)]);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
  });

  it('drain() waits for everything submitted', async () => {
    const r = recorder<number>(10);
    const b = new DynamicBatcher(r.run, { maxBatchSize: 2, maxDelayMs: 1_000 });
    const ps = [1, 2, 3].map((i) => b.submit(i));
    await b.drain();
    expect(b.queued).toBe(0);
    expect(r.batches.flat()).toEqual([1, 2, 3]);
    await Promise.all(ps);
  });
});
