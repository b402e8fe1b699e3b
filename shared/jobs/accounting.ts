/**
 * What each tenant holds in a model's queue, kept exact under retries, crashes and races.
 *
 * Every job has an accounting record (its stage and what it counts: docs/exactness.md) and the
 * model's usage counters are, at every moment, the sum of its records' shares: each Lua script
 * that moves a job's stage moves the counters with it in one atomic step, and a stage a record has
 * already reached is a no-op, so a script resent after a lost reply (ioredis resends in-flight
 * commands on reconnect) changes nothing the second time. Records that disagree with their job
 * (a crash between completing a job and recording it, a job deleted meanwhile) are settled by the
 * reconciler (api/reconciler.ts), which checks each record once a reconciliation period.
 *
 * The run/cancel claim lives here too: whoever claims a job first, a worker starting it or a
 * cancel, decides, so a job is never both canceled and run, and a cancel never wins against a
 * job that has finished.
 */
import type { Config } from '../config.js';
import type { RedisClient } from '../redis/connection.js';
import { accountingKeys, entryInputsKey, jobClaimKey } from '../redis/keys.js';
import { completedSetKey, entryHashKey, jobHashKey, jobLockKey } from '../redis/bullmq-internals.js';
import { anonymousCallsRecordId, entryOfRecord } from '../predict/entry.js';
import { luaCommands } from '../redis/lua-commands.js';

const LIB = ['accounting-lib.lua'];

interface AccountingCommands {
  modelhubAccountSubmit(...args: (string | number)[]): Promise<[SubmitVerdict, number, number]>;
  modelhubAccountSubmitEntry(...args: (string | number)[]): Promise<[SubmitVerdict, number, number][]>;
  modelhubAccountRelease(records: string, usage: string, retained: string, id: string, ttlS: number): Promise<number>;
  modelhubClaimForRun(...args: (string | number)[]): Promise<JobClaim>;
  modelhubClaimEntryForRun(...args: (string | number)[]): Promise<number>;
  modelhubClaimForCancel(...args: (string | number)[]): Promise<CancelClaim>;
  modelhubFinishJob(...args: (string | number)[]): Promise<string[]>;
  modelhubFinishEntry(...args: (string | number)[]): Promise<string[]>;
  modelhubReconcileJobs(numberOfKeys: number, ...args: (string | number)[]): Promise<[number, string[], string[]]>;
}

const commands = luaCommands<AccountingCommands>({
  modelhubAccountSubmit: { file: 'account-submit.lua', numberOfKeys: 2, include: LIB },
  modelhubAccountSubmitEntry: { file: 'account-submit-entry.lua', numberOfKeys: 2, include: LIB },
  modelhubAccountRelease: { file: 'account-release.lua', numberOfKeys: 3, include: LIB },
  modelhubClaimForRun: { file: 'claim-for-run.lua', numberOfKeys: 3, include: LIB },
  modelhubClaimForCancel: { file: 'claim-for-cancel.lua', numberOfKeys: 5, include: LIB },
  modelhubFinishJob: { file: 'finish-job.lua', numberOfKeys: 5, include: LIB },
  modelhubFinishEntry: { file: 'finish-entry.lua', numberOfKeys: 6, include: LIB },
  modelhubClaimEntryForRun: { file: 'claim-entry-for-run.lua', numberOfKeys: 2, include: LIB },
  // A variable number of keys: passed first on each call.
  modelhubReconcileJobs: { file: 'reconcile-jobs.lua', include: LIB },
});

/** 'expired': a cancel took a job queued past its deadline (it had failed): it must not run, and fails with the deadline's error. */
export type JobClaim = 'running' | 'canceled' | 'expired';
/** 'finished': the job completed or failed first; 'gone': it no longer exists. */
export type CancelClaim = JobClaim | 'finished' | 'gone';
/** 'ok': counted; 'waiting' / 'stored': that quota is reached, nothing was counted. */
export type SubmitVerdict = 'ok' | 'waiting' | 'stored';

/** A job's share of its tenant's counts, decided at submit. */
export interface SubmitShare {
  /** Counts in its tenant's waiting jobs (TENANT_MAX_WAITING). */
  countWaiting: boolean;
  /** Input bytes counted in its tenant's stored bytes until it finishes (0: none). */
  inputBytes: number;
}

/** Each tenant's limits, per submitted item (0: none). */
export interface SubmitLimits {
  maxWaiting: number;
  maxStoredBytes: number;
}

/** One item of a coalesced predict entry, as `submitEntry` decides it. */
export interface SubmittedItem {
  id: string;
  tenant: string | null;
  share: SubmitShare;
  limits: SubmitLimits;
}

export interface SubmitOutcome {
  verdict: SubmitVerdict;
  /** The tenant's waiting jobs and stored bytes before this job. */
  waiting: number;
  storedBytes: number;
}

export interface FinishedJob {
  id: string;
  tenant: string | null;
  /** The job's data without its input (JSON), written in place of the data it was queued with. */
  dataWithoutInput: string;
}

/** A finished predict entry (shared/predict/entry.ts): each item's result bytes (0: no result). */
export interface FinishedEntry {
  id: string;
  items: { id: string; tenant: string | null; resultBytes: number }[];
  /** The entry's data without its items' inputs (JSON). */
  dataWithoutInputs: string;
}

export interface TenantUsage {
  waiting: number;
  storedBytes: number;
}

/** Finished jobs' retention: age (s), count and result bytes per model. */
export type RetentionSettings = Pick<Config, 'JOB_RETENTION_S' | 'JOB_RETENTION_COUNT' | 'JOB_RETENTION_BYTES'>;

export interface AccountingOptions {
  /** TTL of the claims, records and counters, s (at least the jobs' retention: sideKeyTtlS). */
  ttlS: number;
  retention: RetentionSettings;
}

const tenantField = (tenant: string | null) => tenant ?? '-';

export class JobAccounting {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly options: AccountingOptions,
  ) {}

  /** Records a job about to be queued and counts its share, unless its tenant is at a quota. */
  async submit(
    model: string,
    id: string,
    tenant: string | null,
    share: SubmitShare,
    limits: SubmitLimits,
  ): Promise<SubmitOutcome> {
    const k = accountingKeys(this.prefix, model);
    const [verdict, waiting, storedBytes] = await commands(this.redis).modelhubAccountSubmit(
      k.records,
      k.usage,
      id,
      tenantField(tenant),
      share.countWaiting ? 1 : 0,
      share.inputBytes,
      limits.maxWaiting,
      limits.maxStoredBytes,
      Date.now(),
      this.options.ttlS,
    );
    return { verdict, waiting, storedBytes };
  }

  /**
   * Records the items of a coalesced predict entry in one atomic step, each decided exactly as
   * its own `submit` in that order would decide it (an item's counts include the items before it);
   * returns each item's outcome, in order.
   */
  async submitEntry(model: string, items: SubmittedItem[]): Promise<SubmitOutcome[]> {
    if (items.length === 0) return [];
    const k = accountingKeys(this.prefix, model);
    const verdicts = await commands(this.redis).modelhubAccountSubmitEntry(
      k.records,
      k.usage,
      Date.now(),
      this.options.ttlS,
      ...items.flatMap((it) => [
        it.id,
        tenantField(it.tenant),
        it.share.countWaiting ? 1 : 0,
        it.share.inputBytes,
        it.limits.maxWaiting,
        it.limits.maxStoredBytes,
      ]),
    );
    return verdicts.map(([verdict, waiting, storedBytes]) => ({ verdict, waiting, storedBytes }));
  }

  /**
   * The submit of an entry none of whose calls holds a share, some anonymous: its anonymous calls'
   * record (`<entry>.a`, which finish-entry.lua settles them in) at `w`, counting nothing, so the
   * reconciler finds the entry if its finish never runs. No quota can refuse such calls, so no
   * script decides them: one HSETNX, which moves no counter (the record adds nothing to any). The
   * records hash keeps the TTL the scripts give it.
   */
  async recordAnonymousCalls(model: string, entryId: string, now = Date.now()): Promise<void> {
    const k = accountingKeys(this.prefix, model);
    await this.redis.hsetnx(k.records, anonymousCallsRecordId(entryId), `w|0|0|0|${now}|-`);
  }

  /** Gives back all a job's record holds (the job is gone, or will never exist); returns the bytes released. */
  release(model: string, id: string): Promise<number> {
    const k = accountingKeys(this.prefix, model);
    const retained = entryOfRecord(id) ? k.retainedCalls : k.retained;
    return commands(this.redis).modelhubAccountRelease(k.records, k.usage, retained, id, this.options.ttlS);
  }

  /** A worker starting a job: 'running' unless a cancel came first (a retry keeps its claim). */
  claimForRun(model: string, id: string): Promise<JobClaim> {
    const k = accountingKeys(this.prefix, model);
    const claim = jobClaimKey(this.prefix, model, id);
    return commands(this.redis).modelhubClaimForRun(
      claim,
      k.records,
      k.usage,
      this.options.ttlS,
      id,
      this.options.ttlS,
    );
  }

  /**
   * A worker starting a coalesced predict entry: its items counted as waiting leave their
   * tenants' waiting counts, in one atomic step (a retried entry moves nothing twice). No claim is
   * written per item: no cancel can claim a coalesced call. Returns the records moved.
   */
  claimEntryForRun(model: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    const k = accountingKeys(this.prefix, model);
    return commands(this.redis).modelhubClaimEntryForRun(k.records, k.usage, this.options.ttlS, ...ids);
  }

  /**
   * A cancel: the job claimed `as` ('canceled', or 'expired' for one queued past its deadline),
   * unless it finished, is gone, or a worker holds it right now; a claim already taken answers as
   * it was taken.
   */
  claimForCancel(model: string, id: string, as: 'canceled' | 'expired' = 'canceled'): Promise<CancelClaim> {
    const k = accountingKeys(this.prefix, model);
    const p = this.prefix;
    return commands(this.redis).modelhubClaimForCancel(
      jobClaimKey(p, model, id),
      jobLockKey(p, model, id),
      jobHashKey(p, model, id),
      k.records,
      k.usage,
      this.options.ttlS,
      id,
      this.options.ttlS,
      as,
    );
  }

  /**
   * A finished job (completed, or failed for good) drops its input and counts its result; older
   * results retention pushes out leave, their jobs with them. Returns the ids the byte bound pushed
   * out (gone already: for the caller's log).
   */
  finish(model: string, job: FinishedJob, now = Date.now()): Promise<string[]> {
    const k = accountingKeys(this.prefix, model);
    const r = this.options.retention;
    return commands(this.redis).modelhubFinishJob(
      jobHashKey(this.prefix, model, job.id),
      k.records,
      k.usage,
      k.retained,
      completedSetKey(this.prefix, model),
      job.id,
      job.dataWithoutInput,
      tenantField(job.tenant),
      now,
      r.JOB_RETENTION_S * 1000,
      r.JOB_RETENTION_COUNT,
      r.JOB_RETENTION_BYTES,
      this.options.ttlS,
    );
  }

  /**
   * A finished predict entry: each item drops its input and counts its result (or, failed, leaves
   * no record); older coalesced calls' results retention pushes out leave as in `finish` (the
   * calls' retained set is apart from the jobs': a job's result is never pushed out by a call's).
   * Returns the ids the byte bound pushed out (gone already).
   */
  finishEntry(model: string, entry: FinishedEntry, now = Date.now()): Promise<string[]> {
    const k = accountingKeys(this.prefix, model);
    const r = this.options.retention;
    return commands(this.redis).modelhubFinishEntry(
      entryHashKey(this.prefix, model, entry.id),
      k.records,
      k.usage,
      k.retainedCalls,
      entryInputsKey(this.prefix, model, entry.id),
      completedSetKey(this.prefix, model),
      entry.dataWithoutInputs,
      now,
      r.JOB_RETENTION_S * 1000,
      r.JOB_RETENTION_COUNT,
      r.JOB_RETENTION_BYTES,
      this.options.ttlS,
      ...entry.items.flatMap((it) => [it.id, tenantField(it.tenant), it.resultBytes]),
    );
  }

  /**
   * Checks the records of `ids` against their jobs: releases those whose job is gone (a submit
   * younger than `graceMs` excepted); returns the finished jobs whose finish never ran and the
   * jobs whose result retention pushed out, for the caller to settle.
   */
  async reconcile(
    model: string,
    ids: string[],
    graceMs: number,
  ): Promise<{ released: number; toFinish: string[]; toRemove: string[] }> {
    if (ids.length === 0) return { released: 0, toFinish: [], toRemove: [] };
    const k = accountingKeys(this.prefix, model);
    // A coalesced predict's record stands for its item (or the entry's anonymous calls) in the
    // entry: the entry's hash is its job's.
    const hashOf = (id: string) => {
      const entry = entryOfRecord(id);
      return entry ? entryHashKey(this.prefix, model, entry) : jobHashKey(this.prefix, model, id);
    };
    const keys = [k.records, k.usage, k.retained, k.retainedCalls, ...ids.map(hashOf)];
    // ARGV[4..] (the ids) line up with KEYS[5..] (their jobs' hashes).
    const [released, toFinish, toRemove] = await commands(this.redis).modelhubReconcileJobs(
      keys.length,
      ...keys,
      Date.now(),
      graceMs,
      this.options.ttlS,
      ...ids,
    );
    return { released, toFinish, toRemove };
  }

  /** The live counters a tenant's quotas are decided on, in one model. */
  async usage(model: string, tenant: string | null): Promise<TenantUsage> {
    const t = tenantField(tenant);
    const [waiting, stored] = await this.redis.hmget(accountingKeys(this.prefix, model).usage, `w|${t}`, `s|${t}`);
    return { waiting: Number(waiting ?? 0), storedBytes: Number(stored ?? 0) };
  }

  /** The model's retained result bytes (the JOB_RETENTION_BYTES bound). */
  async retainedBytes(model: string): Promise<number> {
    return Number((await this.redis.hget(accountingKeys(this.prefix, model).usage, 'retained')) ?? 0);
  }
}

/**
 * Bytes a job's input is counted as at submit: its strings (an image's base64, a text) plus a
 * little per other value. Recorded in the job's accounting record, so what is given back is
 * exactly what was counted.
 */
export function inputBytesOf(input: Record<string, unknown>): number {
  let bytes = 2;
  const visit = (value: unknown, depth: number): void => {
    if (typeof value === 'string') bytes += value.length + 3;
    else if (Array.isArray(value) && depth < 4) for (const v of value) visit(v, depth + 1);
    else if (value && typeof value === 'object' && depth < 4)
      for (const [k, v] of Object.entries(value)) {
        bytes += k.length + 3;
        visit(v, depth + 1);
      }
    else bytes += 8;
  };
  for (const [k, v] of Object.entries(input)) {
    bytes += k.length + 3;
    visit(v, 0);
  }
  return bytes;
}
