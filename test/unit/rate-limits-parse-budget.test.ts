import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { scanJsonStructure } from '../../api/body-parse.js';
import { ParseBudget } from '../../api/parse-budget.js';
import { TokenBuckets, tenantRateLimit } from '../../api/rate-limits.js';

describe('JSON structure scan (before parsing)', () => {
  it('counts values and depth on the bytes, skipping strings and escapes', () => {
    const enc = (s: string) => Buffer.from(s);
    expect(scanJsonStructure(enc('{"a":[1,2,3],"b":"[[[[,,,,"}'), 3, 10)).toBeNull();
    expect(scanJsonStructure(enc('{"a":"\\"[[[[[[","b":1}'), 2, 10)).toBeNull();
    expect(scanJsonStructure(enc('[[[[1]]]]'), 3, 100)).toMatch(/deeper than 3/);
    expect(scanJsonStructure(enc(`[${'0,'.repeat(200)}0]`), 32, 100)).toMatch(/more than 100 JSON values/);
  });
});

describe('parse budget', () => {
  const req = (length: number) =>
    ({ get: (h: string) => (h === 'content-length' ? String(length) : undefined) }) as any;
  const res = () => Object.assign(new EventEmitter(), {}) as any;

  it('refuses a body with 503 BUSY while others hold the budget, and frees it when they finish', () => {
    const budget = new ParseBudget(100);
    const mw = budget.middleware(1000);
    const first = res();
    const results: unknown[] = [];
    mw(req(80), first, (err?: unknown) => results.push(err));
    mw(req(80), res(), (err?: unknown) => results.push(err));
    expect(results[0]).toBeUndefined();
    expect(results[1]).toMatchObject({ kind: 'BUSY', httpStatus: 503, headers: { 'Retry-After': '1' } });
    first.emit('finish');
    expect(budget.bytesInFlight).toBe(0);
    mw(req(80), res(), (err?: unknown) => results.push(err));
    expect(results[2]).toBeUndefined();
  });

  it('always lets one body through when nothing else is being parsed', () => {
    const budget = new ParseBudget(10);
    const out: unknown[] = [];
    budget.middleware(1000)(req(500), res(), (err?: unknown) => out.push(err));
    expect(out).toEqual([undefined]);
  });
});

describe('token buckets', () => {
  it('grants a burst, then refills at the rate, and says how long to wait', () => {
    let t = 0;
    const b = new TokenBuckets(2, 4, () => t);
    expect([1, 2, 3, 4].map(() => b.take('a'))).toEqual([0, 0, 0, 0]);
    expect(b.take('a')).toBe(1);
    expect(b.take('b')).toBe(0);
    t = 1000;
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 1]);
  });
});

describe('rate buckets as GET /v1/usage shows them', () => {
  it("reads a tenant's buckets without taking a token: what it spent, refilled with time; 0 means no limit", () => {
    let now = 1_000_000;
    const limiter = tenantRateLimit({
      requestsPerS: 5,
      bytesPerS: 0,
      bodyLimit: 1000,
      ratesOf: (tenant) =>
        tenant === 'slow' ? { requestsPerS: 1, bytesPerS: 100 } : { requestsPerS: 5, bytesPerS: 0 },
      now: () => now,
    });
    const fresh = limiter.state('alice');
    expect(fresh).toEqual({
      requests: { per_second: 5, burst: 10, available: 10 },
      bytes: { per_second: 0, burst: 0, available: 0 },
    });
    const request = { tenant: 'alice', get: () => undefined, headers: {} } as any;
    for (let i = 0; i < 4; i++) limiter(request, {} as any, () => undefined);
    expect(limiter.state('alice').requests.available).toBe(6);
    expect(limiter.state('alice').requests.available).toBe(6);
    now += 1000;
    expect(limiter.state('alice').requests.available).toBe(10);
    expect(limiter.state('slow')).toEqual({
      requests: { per_second: 1, burst: 2, available: 2 },
      bytes: { per_second: 100, burst: 1000, available: 1000 },
    });
  });
});
