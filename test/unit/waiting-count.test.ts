import { describe, expect, it } from 'vitest';
import { WaitingCount } from '../../api/waiting-count.js';

describe('WaitingCount', () => {
  it('reads once per interval while far from the limit, counting its own additions', async () => {
    let reads = 0;
    let clock = 0;
    const c = new WaitingCount({ limit: 100, maxAgeMs: 1000, read: async () => (reads++, 10), now: () => clock });
    expect(await c.current()).toBe(10);
    c.added();
    c.added();
    expect(await c.current()).toBe(12);
    expect(reads).toBe(1);
    clock = 1000;
    expect(await c.current()).toBe(10);
    expect(reads).toBe(2);
  });

  it('reads every time once the estimate reaches half the limit, so the limit is exact', async () => {
    let waiting = 0;
    let reads = 0;
    const c = new WaitingCount({ limit: 4, maxAgeMs: 60_000, read: async () => (reads++, waiting), now: () => 0 });
    const decisions: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const ok = (await c.current()) < 4;
      decisions.push(ok);
      if (ok) {
        waiting += 1;
        c.added();
      }
    }
    expect(decisions).toEqual([true, true, true, true, false, false]);
    expect(reads).toBe(5); // the first, then each one from the estimate of 2 on
  });
});
