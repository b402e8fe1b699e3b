/**
 * The reconciler's pace (api/reconciler.ts): a model's passes start one period apart. A pass over
 * more records than a tick's share goes on every tick until it ends; one that ended early leaves
 * the model alone (no Redis command at all) until the period is up, and keeps its turn meanwhile,
 * so another replica does not start a pass in between. That replica, having found the turn held,
 * asks again only when the holder's key is due to expire. Only the clock (Date) is faked here:
 * Redis and its I/O are real.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { accountingKeys } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';
import { modelReconciler } from '../helpers/reconciler.js';

const prefix = testPrefix('recpace');
const model = 'm';
const PERIOD_MS = 30_000;
const TICK_MS = 1000;
const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);
const redises: Redis[] = [];

afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await deletePrefix(prefix);
  for (const r of redises) r.disconnect();
});

/** A replica's reconciler over its own connection, with every command it sends counted. */
function replica() {
  const redis = new Redis(REDIS_URL);
  redises.push(redis);
  const commands = vi.spyOn(redis, 'sendCommand');
  const passStarts = vi.spyOn(redis, 'hlen');
  const reconciler = modelReconciler(redis, prefix, model, {
    retentionS: 600,
    periodMs: PERIOD_MS,
    tickMs: TICK_MS,
    graceMs: 3_600_000,
  });
  return { reconciler, commands, passTicks: () => passStarts.mock.calls.length };
}

async function tickAt(r: ReturnType<typeof replica>, ms: number): Promise<void> {
  vi.setSystemTime(T0 + ms);
  await r.reconciler.tick();
}

describe('the reconciler’s pace', () => {
  it('goes on with a pass every tick until it ends, then sends nothing until the period is up; another replica leaves the turn alone', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    // 1,200 submits' records, within the grace (left alone): more than one tick's share (100), and
    // more than a hash keeps compact, so HSCAN hands them out about 100 at a time.
    const records = Object.fromEntries(
      Array.from({ length: 1200 }, (_, i) => [`job-${i}`, `w|0|0|0|${T0}|-`] as const),
    );
    const seed = new Redis(REDIS_URL);
    redises.push(seed);
    await seed.hset(accountingKeys(prefix, model).records, records);

    const a = replica();
    const b = replica();
    let ms = 0;
    for (; ms < 25 * TICK_MS; ms += TICK_MS) {
      await tickAt(a, ms);
      if (a.reconciler.lastPassAt.has(model)) break;
    }
    // The pass took more than one tick, one share each, and ended.
    expect(a.reconciler.lastPassAt.get(model)).toBe(T0 + ms);
    expect(ms).toBeGreaterThanOrEqual(TICK_MS);
    expect(a.passTicks()).toBe(ms / TICK_MS + 1);

    // Until the period since the pass began is up: nothing at all, however many ticks.
    const sent = a.commands.mock.calls.length;
    for (ms += TICK_MS; ms < PERIOD_MS; ms += TICK_MS) await tickAt(a, ms);
    expect(a.commands.mock.calls.length).toBe(sent);

    // Meanwhile the turn is still held here: the other replica starts no pass.
    const turn = accountingKeys(prefix, model).reconciling;
    expect(await seed.pttl(turn)).toBeGreaterThan(3 * TICK_MS);
    vi.setSystemTime(T0 + PERIOD_MS - TICK_MS);
    await b.reconciler.tick();
    expect(b.passTicks()).toBe(0);
    // Having found it held, the other replica asks no more until the holder's key is due to expire
    // (Redis's clock, which is not faked: about the period from now).
    const asked = b.commands.mock.calls.length;
    expect(asked).toBeGreaterThan(0);
    for (let t = 0; t < 10; t++) {
      vi.setSystemTime(T0 + PERIOD_MS + t * TICK_MS);
      await b.reconciler.tick();
    }
    expect(b.commands.mock.calls.length).toBe(asked);

    // The period is up: the next pass starts.
    const before = a.passTicks();
    await tickAt(a, PERIOD_MS);
    expect(a.passTicks()).toBe(before + 1);
  });

  it('takes the turn once the holder’s key is due to expire, when the holder has gone', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    const turn = accountingKeys(prefix, model).reconciling;
    const seed = new Redis(REDIS_URL);
    redises.push(seed);
    await seed.set(turn, 'a replica that has gone', 'PX', 5 * TICK_MS);

    const b = replica();
    await tickAt(b, 0);
    expect(b.passTicks()).toBe(0);
    await tickAt(b, 2 * TICK_MS);
    expect(b.passTicks()).toBe(0);
    // The key expires (deleted here rather than waited for): b's first tick past its PTTL takes the turn.
    await seed.del(turn);
    await tickAt(b, 5 * TICK_MS + 1);
    expect(b.passTicks()).toBe(1);
    expect(await seed.get(turn)).not.toBe(null);
  });
});
