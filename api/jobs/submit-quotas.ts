/**
 * The checks a submission passes before its job is queued: the model's backpressure (429
 * QUEUE_FULL at `queueMaxWaiting` waiting jobs) and its tenant's quotas (429 TENANT_QUOTA: waiting
 * jobs and stored bytes per model), the latter decided atomically with the job's accounting record
 * (shared/jobs/accounting.ts). Jobs and coalesced predict calls pass the same checks.
 */
import type { Config } from '../../shared/config.js';
import { SpecError } from '../../shared/errors.js';
import { JobAccounting, inputBytesOf, type SubmitOutcome, type SubmittedItem } from '../../shared/jobs/accounting.js';
import { tenancyOptions, type TenancyOptions } from '../../shared/options/tenancy.js';
import { limitsOf } from '../../shared/tenant-limits.js';
import { WaitingCount } from '../waiting-count.js';
import { entryOfItem } from '../../shared/predict/entry.js';

export interface SubmitQuotaOptions {
  /**
   * Jobs a model's queue may hold waiting (waiting, prioritized, delayed) before every
   * submission for it is refused (429 QUEUE_FULL).
   * @defaultValue 10000 (QUEUE_MAX_WAITING)
   */
  queueMaxWaiting: number;
  /** The tenants' limits: waiting jobs and stored bytes per model, the defaults and each tenant's overrides. */
  tenancy: TenancyOptions;
}

/** The quota checks' options from a loaded configuration. */
export function submitQuotaOptions(config: Config): SubmitQuotaOptions {
  return { queueMaxWaiting: config.QUEUE_MAX_WAITING, tenancy: tenancyOptions(config) };
}

export class SubmitQuotas {
  /** Backpressure per model, read from Redis at most once a second when far from the limit. */
  private readonly waiting = new Map<string, WaitingCount>();

  /** @param readWaiting - the model's waiting jobs as its queue counts them (read when the estimate is stale) */
  constructor(
    private readonly accounting: JobAccounting,
    private readonly options: SubmitQuotaOptions,
    private readonly readWaiting: (model: string) => Promise<number>,
  ) {}

  private count(model: string): WaitingCount {
    let count = this.waiting.get(model);
    if (!count) {
      count = new WaitingCount({ limit: this.options.queueMaxWaiting, read: () => this.readWaiting(model) });
      this.waiting.set(model, count);
    }
    return count;
  }

  /** Refuses (429 QUEUE_FULL) when the model's queue holds `queueMaxWaiting` jobs; `added` counts what this call adds. */
  async checkWaiting(model: string, added = 0): Promise<void> {
    const count = this.count(model);
    const waiting = await count.current();
    if (waiting >= this.options.queueMaxWaiting) {
      throw new SpecError('QUEUE_FULL', `model "${model}" has ${waiting} jobs waiting; try again later`, {
        'Retry-After': '5',
      });
    }
    for (let i = 0; i < added; i++) count.added();
  }

  /** A job passed checkWaiting and was added. */
  added(model: string): void {
    this.count(model).added();
  }

  /**
   * Records the job about to be queued and counts its share in its tenant's waiting jobs and
   * stored bytes (its input, until it finishes), unless a quota is reached: then nothing is
   * counted and the refusal (429 TENANT_QUOTA) is returned.
   */
  async admit(
    model: string,
    id: string,
    tenant: string | null,
    input: Record<string, unknown>,
  ): Promise<SpecError | null> {
    const item = this.submittedItem(id, tenant, input);
    const counted = await this.accounting.submit(model, id, tenant, item.share, item.limits);
    return this.refusal(model, item, counted);
  }

  /**
   * `admit` for the calls of one coalesced predict entry, in one Redis step: each call is decided
   * as its own `admit` in that order would be (its tenant's limits, the counts after the calls
   * before it); returns each call's refusal or null, in order. Only calls with a share (and the
   * first without one) are recorded here; the rest get their record from their finish. An entry
   * of calls with no share, some anonymous, takes no script: its anonymous calls' record is written.
   */
  async admitEntry(
    model: string,
    calls: { id: string; tenant: string | null; input: Record<string, unknown> }[],
  ): Promise<(SpecError | null)[]> {
    const items = this.submittedItems(calls);
    // A call with no share (not counted as waiting, no input bytes counted) no quota can refuse,
    // and its record would hold nothing until its finish, which writes one where none is: it is
    // admitted without a record, and the others' counts are what they would be with it. The
    // entry's first such call is still recorded: a record is how the reconciler finds an entry
    // whose finish never ran (its worker died in between), and a counted call may be refused.
    // None holds a share and some are anonymous: nothing to decide, and the anonymous calls'
    // record (finish-entry.lua settles them in it) stands in for the first call's.
    const entry = entryOfItem(items[0]?.id ?? '')?.entry;
    if (entry && !items.some(hasShare) && items.some((it) => it.tenant === null)) {
      await this.accounting.recordAnonymousCalls(model, entry);
      return items.map(() => null);
    }
    const sentinel = items.find((it) => !hasShare(it));
    const recorded = items.filter((it) => hasShare(it) || it === sentinel);
    const outcomes = new Map((await this.accounting.submitEntry(model, recorded)).map((o, k) => [recorded[k].id, o]));
    return items.map((it) => {
      const outcome = outcomes.get(it.id);
      return outcome ? this.refusal(model, it, outcome) : null;
    });
  }

  /**
   * Whether admitEntry may refuse any of these calls: only one holding a share can be. When none
   * can, an entry need not wait for the admission's reply before it is added (PredictEntries).
   */
  mayRefuse(calls: { id: string; tenant: string | null; input: Record<string, unknown> }[]): boolean {
    return this.submittedItems(calls).some(hasShare);
  }

  private submittedItems(calls: { id: string; tenant: string | null; input: Record<string, unknown> }[]) {
    return calls.map((c) => this.submittedItem(c.id, c.tenant, c.input));
  }

  /** Whether `tenant`'s jobs and calls count in its waiting jobs: it has a max_waiting quota. */
  countsWaiting(tenant: string | null): boolean {
    return tenant !== null && limitsOf(this.options.tenancy, tenant).maxWaiting > 0;
  }

  /** A call's share and its tenant's limits (a stored-bytes quota only for a named tenant). */
  private submittedItem(id: string, tenant: string | null, input: Record<string, unknown>): SubmittedItem {
    const limits = limitsOf(this.options.tenancy, tenant);
    const storedQuota = tenant !== null ? limits.maxStoredBytes : 0;
    const inputBytes = storedQuota > 0 ? inputBytesOf(input) : 0;
    return {
      id,
      tenant,
      share: { countWaiting: this.countsWaiting(tenant), inputBytes },
      limits: { maxWaiting: limits.maxWaiting, maxStoredBytes: storedQuota },
    };
  }

  /** The 429 TENANT_QUOTA a refused call gets, or null when it was counted. */
  private refusal(model: string, item: SubmittedItem, counted: SubmitOutcome): SpecError | null {
    if (counted.verdict === 'waiting')
      return new SpecError(
        'TENANT_QUOTA',
        `you have ${counted.waiting} jobs waiting for model "${model}" (the limit is ${item.limits.maxWaiting}); try again later`,
        { 'Retry-After': '5' },
      ).withReason('tenant_waiting');
    if (counted.verdict === 'stored')
      return new SpecError(
        'TENANT_QUOTA',
        `your jobs for model "${model}" hold ${counted.storedBytes} bytes of inputs and results (the limit is ${item.limits.maxStoredBytes}); delete finished jobs (DELETE /v1/jobs/{id}) or try again later`,
        { 'Retry-After': '30' },
      ).withReason('tenant_stored_bytes');
    return null;
  }
}

/** A call counted somewhere before it runs (as waiting, or its input bytes): what a quota can refuse. */
function hasShare(it: SubmittedItem): boolean {
  return it.share.countWaiting || it.share.inputBytes > 0;
}
