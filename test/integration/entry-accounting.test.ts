/**
 * A coalesced predict entry's accounting in one script per entry (issue 22): its calls' quota
 * checks and records (account-submit-entry.lua) decide exactly as one account-submit.lua per call
 * in the entry's order would, and its claim (claim-entry-for-run.lua) moves each record counted as
 * waiting once, with no claim key per item.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SubmitQuotas } from '../../api/jobs/submit-quotas.js';
import type { SpecError } from '../../shared/errors.js';
import { JobAccounting, type FinishedEntry, type SubmittedItem } from '../../shared/jobs/accounting.js';
import type { TenancyOptions } from '../../shared/options/tenancy.js';
import { completedSetKey, entryHashKey, jobHashKey } from '../../shared/redis/bullmq-internals.js';
import { accountingKeys, jobClaimKey } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';
import { modelReconciler } from '../helpers/reconciler.js';
import type { Queue } from 'bullmq';
import { itemResultBytes, type EntryData, type EntryResult } from '../../shared/predict/entry.js';

const prefix = testPrefix('entryacct');
const redis = new Redis(REDIS_URL);
const accounting = new JobAccounting(redis, prefix, {
  ttlS: 60,
  retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 10, JOB_RETENTION_BYTES: 0 },
});

afterAll(async () => {
  await deletePrefix(prefix);
  redis.disconnect();
});

const item = (
  id: string,
  tenant: string,
  inputBytes: number,
  maxWaiting: number,
  maxStoredBytes = 0,
): SubmittedItem => ({
  id,
  tenant,
  share: { countWaiting: maxWaiting > 0, inputBytes },
  limits: { maxWaiting, maxStoredBytes },
});

/** SubmitQuotas over this file's accounting: no rate limits, `maxWaiting` unless `overrides` say otherwise. */
const quotasWith = (maxWaiting: number, overrides: TenancyOptions['overrides']) =>
  new SubmitQuotas(
    accounting,
    {
      queueMaxWaiting: 100,
      tenancy: {
        rateRps: 0,
        rateBytesPerS: 0,
        maxWaiting,
        priorityCeiling: 3,
        maxStoredBytes: 0,
        maxBatchItems: 0,
        overrides,
      },
    },
    async () => 0,
  );

/** What the model's counters hold, as one object (empty: every count back to zero). */
const counters = async (model: string) => redis.hgetall(accountingKeys(prefix, model).usage);

describe('account-submit-entry.lua', () => {
  // Tenant a may have 3 waiting and already has 1; tenant b may have 10, and 250 bytes stored
  // (checked before an item: a tenant under the bound may pass it once).
  const plan = (p: string) => [
    item(`${p}.p0`, 'a', 10, 3),
    item(`${p}.p1`, 'b', 100, 10, 250),
    item(`${p}.p2`, 'a', 10, 3),
    item(`${p}.p3`, 'b', 100, 10, 250),
    // a reaches its waiting limit here: this and its later calls are refused...
    item(`${p}.p4`, 'a', 10, 3),
    // ...while b's go on until its stored bytes are reached (200 + 100 ≥ 250 before p7)
    item(`${p}.p5`, 'b', 100, 10, 250),
    item(`${p}.p6`, 'a', 10, 3),
    item(`${p}.p7`, 'b', 100, 10, 250),
    // a tenant with no limits is never refused
    item(`${p}.p8`, 'c', 0, 0),
  ];
  const already = item('earlier', 'a', 5, 3);

  it('an entry of mixed tenants gets exactly the verdicts and counts of one submit per call, in order', async () => {
    // The same starting state in two models: one entry in one, one submit per call in the other.
    for (const model of ['entry', 'single'])
      await accounting.submit(model, already.id, 'a', already.share, already.limits);
    const entry = await accounting.submitEntry('entry', plan('e'));
    const single = [];
    for (const it of plan('e')) single.push(await accounting.submit('single', it.id, it.tenant, it.share, it.limits));

    expect(entry).toEqual(single);
    expect(entry.map((o) => o.verdict)).toEqual(['ok', 'ok', 'ok', 'ok', 'waiting', 'ok', 'waiting', 'stored', 'ok']);
    // Counts are the tenant's before each call: a's third call saw 3 waiting, b's last 300 bytes.
    expect(entry[4]).toEqual({ verdict: 'waiting', waiting: 3, storedBytes: 25 });
    expect(entry[7]).toEqual({ verdict: 'stored', waiting: 3, storedBytes: 300 });
    expect(await counters('entry')).toEqual(await counters('single'));
    const records = async (model: string) =>
      Object.keys(await redis.hgetall(accountingKeys(prefix, model).records)).sort();
    expect(await records('entry')).toEqual(await records('single'));
    expect(await records('entry')).toEqual(['e.p0', 'e.p1', 'e.p2', 'e.p3', 'e.p5', 'e.p8', 'earlier']);
  });

  it('sent again (a reply lost), it finds its records and changes nothing, as the single submits would', async () => {
    const before = await counters('entry');
    const again = await accounting.submitEntry('entry', plan('e'));
    const singleAgain = [];
    for (const it of plan('e'))
      singleAgain.push(await accounting.submit('single', it.id, it.tenant, it.share, it.limits));
    expect(again).toEqual(singleAgain);
    expect(await counters('entry')).toEqual(before);
  });

  it('once every call is released, every count is back to zero', async () => {
    for (const model of ['entry', 'single'])
      for (const id of [already.id, ...plan('e').map((it) => it.id)]) await accounting.release(model, id);
    expect(await counters('entry')).toEqual({});
    expect(await counters('single')).toEqual({});
  });

  it('refreshes the records and counters TTLs once it counted a call', async () => {
    await accounting.submitEntry('ttl', [item('t.p0', 'a', 10, 3)]);
    const k = accountingKeys(prefix, 'ttl');
    expect(await redis.ttl(k.records)).toBeGreaterThan(0);
    expect(await redis.ttl(k.usage)).toBeGreaterThan(0);
  });

  it("SubmitQuotas.admitEntry refuses with admit's own errors, per tenant's limits", async () => {
    const quotas = quotasWith(2, { big: { max_waiting: 5 } });
    const calls = ['small', 'big', 'small', 'big', 'small', 'big'].map((tenant, k) => ({
      id: `q.p${k}`,
      tenant,
      input: { text: 'x' },
    }));
    const entry = await quotas.admitEntry('quota-entry', calls);
    const single = [];
    for (const c of calls) single.push(await quotas.admit('quota-single', c.id, c.tenant, c.input));
    // The same refusals, but for their model's name in the message.
    const shown = (e: SpecError | null, model: string) =>
      e && { kind: e.kind, message: e.message.replace(model, 'M'), headers: e.headers, reason: e.reason };
    expect(entry.map((e) => shown(e, 'quota-entry'))).toEqual(single.map((e) => shown(e, 'quota-single')));
    expect(entry.map((e) => e?.kind ?? null)).toEqual([null, null, null, null, 'TENANT_QUOTA', null]);
  });
});

describe('SubmitQuotas.admitEntry: calls with no share', () => {
  const quotas = quotasWith(0, { counted: { max_waiting: 5 } });
  // Anonymous and "free" (no max_waiting) calls hold no share; "counted"'s count as waiting.
  const calls = [null, 'free', 'counted', null, 'free'].map((tenant, k) => ({
    id: `s.p${k}`,
    tenant,
    input: { text: 'x' },
  }));
  const shares = async (model: string) =>
    Object.fromEntries(
      Object.entries(await redis.hgetall(accountingKeys(prefix, model).records)).map(([id, r]) => [
        id,
        r.replace(/\|\d+\|([^|]*)$/, '|$1'), // without its created time
      ]),
    );

  it("records only the calls with a share and the entry's first without; claimed and finished, it ends as a record per call does", async () => {
    expect(await quotas.admitEntry('share-entry', calls)).toEqual([null, null, null, null, null]);
    expect(Object.keys(await shares('share-entry')).sort()).toEqual(['s.p0', 's.p2']);
    expect(await counters('share-entry')).toEqual({ 'w|counted': '1' });
    // The same calls, each recorded at its submit (account-submit.lua per call).
    for (const c of calls) expect(await quotas.admit('share-single', c.id, c.tenant, c.input)).toBeNull();
    expect(await counters('share-single')).toEqual(await counters('share-entry'));

    for (const [model, entry] of [
      ['share-entry', 's'],
      ['share-single', 's'],
    ]) {
      await accounting.claimEntryForRun(
        model,
        calls.map((c) => c.id),
      );
      await redis.hset(entryHashKey(prefix, model, entry), 'data', '{}');
      await accounting.finishEntry(model, {
        id: entry,
        dataWithoutInputs: '',
        items: calls.map((c, k) => ({ id: c.id, tenant: c.tenant, resultBytes: k === 1 ? 0 : 7 })),
      });
    }
    expect(await shares('share-entry')).toEqual(await shares('share-single'));
    expect(await counters('share-entry')).toEqual(await counters('share-single'));
    expect(await counters('share-entry')).toEqual({ 's|counted': '7', 's|free': '7', retained: '28' });
  });

  it('an entry of calls with no share whose finish never ran is still found by the reconciler, through its first call', async () => {
    // Named tenants only: the first call's record stands for the entry.
    const lost = calls.filter((c) => c.tenant === 'free').map((c) => ({ ...c, id: c.id.replace('s.', 'l.') }));
    expect(await quotas.admitEntry('share-lost', lost)).toEqual([null, null]);
    const ids = Object.keys(await shares('share-lost'));
    expect(ids).toEqual(['l.p1']);
    // BullMQ finished the entry; its worker died before finish-entry.lua.
    await redis.hset(entryHashKey(prefix, 'share-lost', 'l'), 'data', '{}', 'finishedOn', '1');
    expect(await accounting.reconcile('share-lost', ids, 60_000)).toEqual({
      released: 0,
      toFinish: ['l.p1'],
      toRemove: [],
    });
  });

  /** The reconciler finds `entry` finished but unsettled through its anonymous calls' record, and finishes it. */
  const reconcilerFinishes = async (model: string, entry: string, items: FinishedEntry['items']) => {
    const id = `${entry}.a`;
    expect(await accounting.reconcile(model, [id], 60_000)).toEqual({ released: 0, toFinish: [id], toRemove: [] });
    await accounting.finishEntry(model, { id: entry, dataWithoutInputs: '', items });
  };

  it("with anonymous calls among them, the anonymous calls' record (no call's) stands for the entry, written without a quota script", async () => {
    const model = 'share-anonymous';
    const lost = calls.filter((c) => c.tenant !== 'counted').map((c) => ({ ...c, id: c.id.replace('s.', 'n.') }));
    expect(await quotas.admitEntry(model, lost)).toEqual([null, null, null, null]);
    expect(await shares(model)).toEqual({ 'n.a': 'w|0|0|0|-' });
    expect(await counters(model)).toEqual({});
    // Its finish never ran: the reconciler finds it through that record and finishes it; the
    // anonymous calls' results join the record, the named tenant's keep their own.
    await redis.hset(entryHashKey(prefix, model, 'n'), 'data', '{}', 'finishedOn', '1');
    await reconcilerFinishes(
      model,
      'n',
      lost.map((c) => ({ id: c.id, tenant: c.tenant, resultBytes: 7 })),
    );
    expect(await shares(model)).toEqual({ 'n.a': 'r|0|0|14|-', 'n.p1': 'r|0|0|7|free', 'n.p4': 'r|0|0|7|free' });
    expect(await counters(model)).toEqual({ 's|free': '14', retained: '28' });

    // Rolling upgrade: an earlier release's worker settled the entry (a record per call, the
    // entry marked) and left the anonymous calls' record at w; the reconciler's finish drops it.
    await quotas.admitEntry(model, [{ id: 'o.p0', tenant: null, input: { text: 'x' } }]);
    await redis.hset(entryHashKey(prefix, model, 'o'), 'data', '{}', 'finishedOn', '1', 'accounted', '1');
    await reconcilerFinishes(model, 'o', [{ id: 'o.p0', tenant: null, resultBytes: 7 }]);
    expect(await shares(model)).not.toHaveProperty(['o.a']);

    // An entry whose add failed (never in BullMQ): its record is given back once past the grace.
    await quotas.admitEntry(model, [{ id: 'f.p0', tenant: null, input: { text: 'x' } }]);
    expect(await accounting.reconcile(model, ['f.a'], 60_000)).toEqual({ released: 0, toFinish: [], toRemove: [] });
    expect(await accounting.reconcile(model, ['f.a'], 0)).toEqual({ released: 1, toFinish: [], toRemove: [] });
    expect(Object.keys(await shares(model)).sort()).toEqual(['n.a', 'n.p1', 'n.p4']);
  });
});

describe('claim-entry-for-run.lua', () => {
  const model = 'claims';
  const ids = ['c.p0', 'c.p1', 'c.p2'];
  const stages = async (m: string) =>
    Object.fromEntries(
      Object.entries(await redis.hgetall(accountingKeys(prefix, m).records)).map(([id, r]) => [id, r[0]]),
    );

  it('moves each record counted as waiting out of the count once, writes no claim keys', async () => {
    // p0 and p2 count as waiting (their tenant has a max_waiting); p1 does not.
    await accounting.submitEntry(model, [
      item('c.p0', 't', 100, 10),
      item('c.p1', 't', 100, 0),
      item('c.p2', 't', 100, 10),
    ]);
    expect(await accounting.usage(model, 't')).toEqual({ waiting: 2, storedBytes: 300 });

    expect(await accounting.claimEntryForRun(model, ids)).toBe(2);
    // The claimed calls left the waiting count; their inputs stay counted until they finish.
    expect(await accounting.usage(model, 't')).toEqual({ waiting: 0, storedBytes: 300 });
    // An uncounted record has nothing to move: it stays at w until its finish.
    expect(await stages(model)).toEqual({ 'c.p0': 'i', 'c.p1': 'w', 'c.p2': 'i' });
    for (const id of ids) expect(await redis.exists(jobClaimKey(prefix, model, id))).toBe(0);
  });

  it('a retried entry (or a resent script) moves nothing twice', async () => {
    expect(await accounting.claimEntryForRun(model, ids)).toBe(0);
    expect(await accounting.usage(model, 't')).toEqual({ waiting: 0, storedBytes: 300 });
    expect(await stages(model)).toEqual({ 'c.p0': 'i', 'c.p1': 'w', 'c.p2': 'i' });
  });

  it('ends with the counts a claim per item ends with, an id given twice moved once', async () => {
    const single = 'claims-single';
    const twice = 'claims-twice';
    for (const m of [single, twice])
      await accounting.submitEntry(m, [
        item('c.p0', 't', 100, 10),
        item('c.p1', 't', 100, 0),
        item('c.p2', 't', 100, 10),
      ]);
    for (const id of ids) await accounting.claimForRun(single, id);
    expect(await accounting.claimEntryForRun(twice, ['c.p0', 'c.p0', 'c.p1', 'c.p2'])).toBe(2);
    expect(await counters(twice)).toEqual(await counters(single));
    expect(await counters(twice)).toEqual(await counters(model));
  });

  it('an item with no record (released, or never counted) is left alone', async () => {
    expect(await accounting.claimEntryForRun('claims-none', ['n.p0'])).toBe(0);
    expect(await counters('claims-none')).toEqual({});
    expect(await redis.exists(accountingKeys(prefix, 'claims-none').records)).toBe(0);
  });
});

/** An entry of `n` calls (tenant t, 10 bytes in, 7 out each) submitted, claimed and finished at `now`. */
const finishAll = async (acct: JobAccounting, model: string, entry: string, n: number, now: number) => {
  const ids = Array.from({ length: n }, (_, i) => `${entry}.p${i}`);
  await acct.submitEntry(
    model,
    ids.map((id) => item(id, 't', 10, 0)),
  );
  await acct.claimEntryForRun(model, ids);
  await redis.hset(entryHashKey(prefix, model, entry), 'data', '{}');
  const pushedOut = await acct.finishEntry(
    model,
    { id: entry, dataWithoutInputs: '{}', items: ids.map((id) => ({ id, tenant: 't', resultBytes: 7 })) },
    now,
  );
  return { ids, pushedOut };
};

describe('finish-entry.lua: retention push-out over a long head', () => {
  // The script reads the retained set's head in growing pieces (4, then 16, ...) and writes the
  // records and counters once at the end: an entry that pushes out results across several pieces,
  // or stops part-way through one, must end exactly where pushing them out one by one ends.
  const stages = async (model: string) =>
    Object.fromEntries(
      Object.entries(await redis.hgetall(accountingKeys(prefix, model).records)).map(([id, r]) => [id, r[0]]),
    );
  const retained = async (model: string) => redis.zrange(accountingKeys(prefix, model).retainedCalls, 0, -1);

  it('by count: 30 of 40 results pushed out at once (pieces of 4, 16 and 64), the newest 10 kept', async () => {
    const model = 'retain-count';
    // An entry's own results are never pushed out by its finish, however many: 30 past a bound of 10.
    await finishAll(accounting, model, 'k0', 30, 999);
    expect(await retained(model)).toHaveLength(30);
    const { ids, pushedOut } = await finishAll(accounting, model, 'k', 10, 1000);
    // Only what the byte bound pushes out is returned: none here.
    expect(pushedOut).toEqual([]);
    expect(await retained(model)).toEqual(ids.map((id) => `${id}|7|t`).sort());
    // A coalesced call's record goes with its result (a job's goes with its job: below).
    expect(await stages(model)).toEqual(Object.fromEntries(ids.map((id) => [id, 'r'])));
    expect(await counters(model)).toEqual({ 's|t': '70', retained: '70' });
  });

  // An accounting with these retention bounds, holding one finished async job (its hash, its
  // member of BullMQ's completed set) as BullMQ leaves it.
  const finishedJob = async (model: string, bounds: { count: number; bytes: number }, resultBytes: number) => {
    const bounded = new JobAccounting(redis, prefix, {
      ttlS: 60,
      retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: bounds.count, JOB_RETENTION_BYTES: bounds.bytes },
    });
    const job = jobHashKey(prefix, model, 'j');
    const completed = completedSetKey(prefix, model);
    await bounded.submit(model, 'j', 't', { countWaiting: false, inputBytes: 5 }, { maxWaiting: 0, maxStoredBytes: 0 });
    await bounded.claimForRun(model, 'j');
    await redis.hset(job, 'data', '{}', 'returnvalue', 'r'.repeat(resultBytes));
    await redis.zadd(completed, 500, 'j');
    await bounded.finish(model, { id: 'j', tenant: 't', dataWithoutInput: '{}' }, 500);
    const stillKept = async () => ({
      hash: await redis.exists(job),
      completed: await redis.zscore(completed, 'j'),
      member: await redis.zrange(accountingKeys(prefix, model).retained, 0, -1),
      stage: (await redis.hget(accountingKeys(prefix, model).records, 'j'))?.[0],
    });
    return { bounded, stillKept };
  };
  const kept = { hash: 1, completed: '500', member: ['j|9|t'], stage: 'r' };

  it("the calls' results are bounded by count in their own set: a job's result is never pushed out by them", async () => {
    const model = 'retain-job';
    const { bounded, stillKept } = await finishedJob(model, { count: 2, bytes: 0 }, 9);
    expect(await counters(model)).toEqual({ 's|t': '9', retained: '9' });
    // Four calls' results past a count of 2: the older entry's calls go, not the older job.
    await finishAll(bounded, model, 'e', 2, 1000);
    const { ids } = await finishAll(bounded, model, 'f', 2, 2000);
    expect(await stillKept()).toEqual(kept);
    expect(await retained(model)).toEqual(ids.map((id) => `${id}|7|t`));
    expect(await stages(model)).toEqual({ j: 'r', ...Object.fromEntries(ids.map((id) => [id, 'r'])) });
    expect(await counters(model)).toEqual({ 's|t': '23', retained: '23' });
  });

  it("the byte bound counts both sets, and a call's finish pushes out only calls", async () => {
    const model = 'retain-job-bytes';
    const { bounded, stillKept } = await finishedJob(model, { count: 1000, bytes: 20 }, 9);
    // 9 + 3 × 7 = 30 > 20, but an entry's own results are never pushed out by bytes.
    const first = await finishAll(bounded, model, 'b1', 3, 1000);
    expect(first.pushedOut).toEqual([]);
    // 37: the older calls go until 20 holds (16 left), the job stays though it is the oldest.
    const second = await finishAll(bounded, model, 'b2', 1, 2000);
    expect(second.pushedOut).toEqual([...first.ids].sort());
    expect(await stillKept()).toEqual(kept);
    expect(await retained(model)).toEqual([`${second.ids[0]}|7|t`]);
    expect(await counters(model)).toEqual({ 's|t': '16', retained: '16' });
  });

  it('a second finish of an entry whose results were pushed out changes nothing (the entry is marked, the records are gone)', async () => {
    const model = 'retain-refinish';
    const { ids } = await finishAll(accounting, model, 'f', 40, 1000);
    const before = { stages: await stages(model), counters: await counters(model), retained: await retained(model) };
    // As a resent call or the reconciler racing the worker would run it: the same entry, again.
    const again = await accounting.finishEntry(
      model,
      { id: 'f', dataWithoutInputs: '{}', items: ids.map((id) => ({ id, tenant: 't', resultBytes: 7 })) },
      1001,
    );
    expect(again).toEqual([]);
    expect({ stages: await stages(model), counters: await counters(model), retained: await retained(model) }).toEqual(
      before,
    );
    expect(await redis.hget(entryHashKey(prefix, model, 'f'), 'accounted')).toBe('1');
  });

  it('by bytes: older results go until the bound holds, stopping inside the second piece', async () => {
    const model = 'retain-bytes';
    const bounded = new JobAccounting(redis, prefix, {
      ttlS: 60,
      retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 1000, JOB_RETENTION_BYTES: 50 },
    });
    const first = await finishAll(bounded, model, 'b1', 6, 1000);
    expect(first.pushedOut).toEqual([]);
    // 6 + 6 results of 7 bytes: 84 > 50, so the oldest go until 49 are left; the entry just
    // finished is never pushed out by bytes.
    const second = await finishAll(bounded, model, 'b2', 6, 2000);
    const oldest = first.ids.map((id) => `${id}|7|t`).sort();
    const gone = oldest.slice(0, 5).map((m) => m.split('|')[0]);
    expect(second.pushedOut).toEqual(gone);
    expect(await retained(model)).toEqual([oldest[5], ...second.ids.map((id) => `${id}|7|t`).sort()]);
    const st = await stages(model);
    expect(Object.keys(st).sort()).toEqual([...first.ids, ...second.ids].filter((id) => !gone.includes(id)).sort());
    expect(Object.values(st).every((s) => s === 'r')).toBe(true);
    expect(await counters(model)).toEqual({ 's|t': '49', retained: '49' });
  });
});

describe("finish-entry.lua: an entry's anonymous calls as one record", () => {
  const records = async (model: string) => redis.hgetall(accountingKeys(prefix, model).records);
  const retained = async (model: string) => redis.zrange(accountingKeys(prefix, model).retainedCalls, 0, -1);
  // Anonymous calls with no share (p0 the submit's sentinel, p1 failed, p3 answered), a named
  // tenant's call with none (p2) and one with a share (p4: its input counted).
  const submitted = async (acct: JobAccounting, model: string, entry: string) => {
    const ids = [0, 1, 2, 3, 4].map((k) => `${entry}.p${k}`);
    await acct.submitEntry(model, [item(ids[0], '-', 0, 0), item(ids[4], 'q', 10, 0)]);
    await acct.claimEntryForRun(model, [ids[0], ids[4]]);
    await redis.hset(entryHashKey(prefix, model, entry), 'data', '{}');
    const tenants = ['-', '-', 'free', '-', 'q'];
    const bytes = [7, 0, 7, 9, 7];
    return ids.map((id, k) => ({ id, tenant: tenants[k] === '-' ? null : tenants[k], resultBytes: bytes[k] }));
  };

  it('one record and one retained member hold the anonymous calls; the others keep their own; the counts are as before', async () => {
    const model = 'anon-one';
    const items = await submitted(accounting, model, 'a');
    expect(await accounting.finishEntry(model, { id: 'a', dataWithoutInputs: '', items }, 1000)).toEqual([]);
    const rs = await records(model);
    expect(Object.keys(rs).sort()).toEqual(['a.a', 'a.p2', 'a.p4']);
    // The sentinel's record went into it; the failed call added nothing.
    expect(rs['a.a']).toBe('r|0|0|16|1000|-');
    expect(await retained(model)).toEqual(['a.a|16|-', 'a.p2|7|free', 'a.p4|7|q']);
    // Exactly the counts one record per call leaves (the anonymous calls count in no tenant's).
    expect(await counters(model)).toEqual({ 's|free': '7', 's|q': '7', retained: '30' });

    // A second run (a resent call, the reconciler racing the worker) changes nothing, nor does
    // the reconciler's check while the entry is kept.
    await accounting.finishEntry(model, { id: 'a', dataWithoutInputs: '', items }, 1001);
    expect(await accounting.reconcile(model, Object.keys(rs), 60_000)).toEqual({
      released: 0,
      toFinish: [],
      toRemove: [],
    });
    expect(await records(model)).toEqual(rs);
    expect(await counters(model)).toEqual({ 's|free': '7', 's|q': '7', retained: '30' });
  });

  it('retention pushes the record out as one result, and the reconciler gives it back once its entry is gone', async () => {
    const model = 'anon-bounds';
    const bounded = new JobAccounting(redis, prefix, {
      ttlS: 60,
      retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 3, JOB_RETENTION_BYTES: 0 },
    });
    await bounded.finishEntry(
      model,
      { id: 'a', dataWithoutInputs: '', items: await submitted(bounded, model, 'a') },
      1000,
    );
    // Three more results past a count of 3: a's three members go, its anonymous calls' as one.
    await bounded.finishEntry(
      model,
      { id: 'b', dataWithoutInputs: '', items: await submitted(bounded, model, 'b') },
      2000,
    );
    expect(Object.keys(await records(model)).sort()).toEqual(['b.a', 'b.p2', 'b.p4']);
    expect(await counters(model)).toEqual({ 's|free': '7', 's|q': '7', retained: '30' });

    // b removed by its own retention: the reconciler gives back its three records once.
    await redis.del(entryHashKey(prefix, model, 'b'));
    const ids = Object.keys(await records(model));
    expect(await bounded.reconcile(model, [...ids, 'b.a'], 60_000)).toEqual({
      released: 3,
      toFinish: [],
      toRemove: [],
    });
    expect(await records(model)).toEqual({});
    expect(await retained(model)).toEqual([]);
    expect(await counters(model)).toEqual({});
  });

  it("a finish that comes after its entry is gone gives back the anonymous calls' record too", async () => {
    const model = 'anon-gone';
    const items = await submitted(accounting, model, 'a');
    await accounting.finishEntry(model, { id: 'a', dataWithoutInputs: '', items }, 1000);
    await redis.del(entryHashKey(prefix, model, 'a'));
    await accounting.finishEntry(model, { id: 'a', dataWithoutInputs: '', items }, 1001);
    expect(await records(model)).toEqual({});
    expect(await retained(model)).toEqual([]);
    expect(await counters(model)).toEqual({});
  });

  it('a DELETE of one anonymous call gives back nothing of its own: its bytes stay in the record until it goes', async () => {
    const model = 'anon-delete';
    await accounting.finishEntry(
      model,
      { id: 'a', dataWithoutInputs: '', items: await submitted(accounting, model, 'a') },
      1000,
    );
    expect(await accounting.release(model, 'a.p3')).toBe(0);
    expect(await accounting.release(model, 'a.p2')).toBe(7);
    expect(await counters(model)).toEqual({ 's|q': '7', retained: '23' });
  });
});

describe('reconcile-jobs.lua over coalesced calls', () => {
  const model = 'reconcile';
  const finished = async (entry: string, n: number) => (await finishAll(accounting, model, entry, n, Date.now())).ids;

  it("releases a gone entry's calls once (an id given twice too), finishes an unrecorded finish, leaves the rest", async () => {
    const gone = await finished('g', 2);
    await redis.del(entryHashKey(prefix, model, 'g'));
    const kept = await finished('k', 1);
    // Finished by BullMQ, never recorded: its call is still at w (not counted as waiting, its claim moved nothing).
    await accounting.submitEntry(model, [item('u.p0', 't', 10, 0)]);
    await accounting.claimEntryForRun(model, ['u.p0']);
    await redis.hset(entryHashKey(prefix, model, 'u'), 'data', '{}', 'finishedOn', '1');
    // Submitted just now, its entry not added yet: inside the grace.
    await accounting.submitEntry(model, [item('y.p0', 't', 10, 0)]);
    expect(await counters(model)).toEqual({ 's|t': '41', retained: '21' });

    const out = await accounting.reconcile(model, [gone[0], gone[0], gone[1], kept[0], 'u.p0', 'y.p0'], 60_000);
    expect(out).toEqual({ released: 2, toFinish: ['u.p0'], toRemove: [] });
    // g's two results (7 bytes each) left the tenant's and the model's counts; nothing else moved.
    expect(await counters(model)).toEqual({ 's|t': '27', retained: '7' });
    expect(await redis.zrange(accountingKeys(prefix, model).retainedCalls, 0, -1)).toEqual(['k.p0|7|t']);
    expect(Object.keys(await redis.hgetall(accountingKeys(prefix, model).records)).sort()).toEqual([
      'k.p0',
      'u.p0',
      'y.p0',
    ]);
  });
});

const ITEM_METRICS = { inference_ms: 1, preprocess_ms: 1, batch_size: 3 };

describe('Reconciler over an entry whose finish never ran', () => {
  it("finishes the entry once, however many of its calls' records come back", async () => {
    const model = 'lost-finish';
    const ids = ['lf.p0', 'lf.p1', 'lf.p2'];
    // Three calls counted at their submit; BullMQ finished the entry, its worker died before
    // finish-entry.lua. Each call's record comes back from the check; the entry is read once.
    await accounting.submitEntry(
      model,
      ids.map((id) => item(id, 't', 10, 5)),
    );
    await redis.hset(entryHashKey(prefix, model, 'lf'), 'data', '{}', 'finishedOn', '1');
    const entry = {
      data: {
        v: 2,
        kind: 'entry',
        model,
        tenant: null,
        input: {},
        items: ids.map((id) => ({ id, tenant: 't', input: {} })),
      },
      returnvalue: { v: 1, items: ids.map((id) => ({ id, output: { ok: 1 }, metrics: ITEM_METRICS })) },
    };
    const bytes = String(3 * itemResultBytes(entry.returnvalue.items[0]));
    let reads = 0;
    const lane = { getJob: async () => (reads++, entry) } as unknown as Queue<EntryData, EntryResult>;
    const reconciler = modelReconciler(redis, prefix, model, { entries: new Map([[model, lane]]) });
    await reconciler.reconcileAll();
    expect(reads).toBe(1);
    const records = await redis.hgetall(accountingKeys(prefix, model).records);
    expect(Object.values(records).map((r) => r[0])).toEqual(['r', 'r', 'r']);
    expect(await counters(model)).toEqual({ 's|t': bytes, retained: bytes });
  });
});
