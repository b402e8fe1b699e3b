/** The coalescing window's rules (api/predict-coalescer.ts), without Redis. */
import { describe, expect, it } from 'vitest';
import { PredictCoalescer, fairFill } from '../../api/predict-coalescer.js';

interface Sent {
  kind: 'single' | 'entry';
  calls: string[];
}

function harness(windowMs: number, capacity = 4, enabled = true) {
  const sent: Sent[] = [];
  const release: (() => void)[] = [];
  const held = () => new Promise<void>((r) => release.push(r));
  const c = new PredictCoalescer<string, string>({
    windowMs,
    capacity: () => capacity,
    enabled: () => enabled,
    single: async (_m, call) => {
      sent.push({ kind: 'single', calls: [call] });
      await held();
      return `${call}:1`;
    },
    entry: (_m, calls) => {
      sent.push({ kind: 'entry', calls });
      const done = held();
      return calls.map(async (call) => (await done, `${call}:${calls.length}`));
    },
  });
  const flushAll = () => {
    for (const r of release.splice(0)) r();
  };
  return { c, sent, flushAll };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('fair fill', () => {
  it('takes everyone in arrival order when the entry has room', () => {
    expect(fairFill(['a', 'b', 'a'], 4)).toEqual([0, 1, 2]);
  });

  it('holds a flooding tenant to its share while others wait, then fills what is left in arrival order', () => {
    // a floods; b and c wait behind it: share = ceil(4 / 3) = 2 each.
    expect(fairFill(['a', 'a', 'a', 'a', 'a', 'b', 'c'], 4)).toEqual([0, 1, 5, 6]);
    // c has nothing more: the room left goes to the next in arrival order.
    expect(fairFill(['a', 'a', 'a', 'b', 'b', 'b'], 5)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('the coalescer', () => {
  it('sends a call alone at once when nothing is in flight (c=1 pays no window)', async () => {
    const { c, sent, flushAll } = harness(1000);
    const p = c.predict('m', 'a', 'x');
    await tick();
    expect(sent).toEqual([{ kind: 'single', calls: ['x'] }]);
    flushAll();
    expect(await p).toBe('x:1');
  });

  it('while one is in flight, gathers the next ones into one entry at capacity; each gets its own answer', async () => {
    const { c, sent, flushAll } = harness(60_000, 3);
    const first = c.predict('m', 'a', 'x0');
    const rest = ['x1', 'x2', 'x3'].map((x, i) => c.predict('m', i % 2 ? 'b' : 'a', x));
    await tick();
    // Capacity reached: sent without waiting for the (one-minute) window.
    expect(sent).toEqual([
      { kind: 'single', calls: ['x0'] },
      { kind: 'entry', calls: ['x1', 'x2', 'x3'] },
    ]);
    flushAll();
    expect(await first).toBe('x0:1');
    expect(await Promise.all(rest)).toEqual(['x1:3', 'x2:3', 'x3:3']);
  });

  it('sends what the window gathered when it closes; another model is not held by it', async () => {
    const { c, sent, flushAll } = harness(5, 8);
    const first = c.predict('m', 'a', 'x0');
    const second = c.predict('m', 'a', 'x1');
    const other = c.predict('n', 'a', 'y0');
    await tick();
    expect(sent).toEqual([
      { kind: 'single', calls: ['x0'] },
      { kind: 'single', calls: ['y0'] },
    ]);
    await new Promise((r) => setTimeout(r, 20));
    // One call in the window: sent alone.
    expect(sent[2]).toEqual({ kind: 'single', calls: ['x1'] });
    flushAll();
    expect(await Promise.all([first, second, other])).toEqual(['x0:1', 'x1:1', 'y0:1']);
  });

  it('window 0, or no worker reading entries: every call alone', async () => {
    for (const h of [harness(0), harness(1000, 4, false)]) {
      const ps = ['x0', 'x1', 'x2'].map((x) => h.c.predict('m', 'a', x));
      await tick();
      expect(h.sent.map((s) => s.kind)).toEqual(['single', 'single', 'single']);
      h.flushAll();
      expect(await Promise.all(ps)).toEqual(['x0:1', 'x1:1', 'x2:1']);
    }
  });

  it('an entry that fails to send fails its own calls only', async () => {
    const c = new PredictCoalescer<string, string>({
      windowMs: 60_000,
      capacity: () => 2,
      enabled: () => true,
      single: (_m, call) => new Promise((r) => setTimeout(() => r(call), 10)),
      entry: () => {
        throw new Error('redis down');
      },
    });
    const first = c.predict('m', 'a', 'x0');
    const rest = ['x1', 'x2'].map((x) => c.predict('m', 'a', x));
    await expect(Promise.all(rest)).rejects.toThrow('redis down');
    expect(await first).toBe('x0');
  });
});
