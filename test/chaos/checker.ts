/**
 * The invariants (issue 21), checked once the hub is quiet. Each check counts what it looked at
 * and reports violations with the ids they are about, so the run can print the history around.
 *
 * I5 recomputes usage from the jobs (and batches) that exist, read from the queue itself, never
 * from the hub's counters: `expectedUsage` builds, per tenant and model, every field the checker
 * knows how to recompute. A usage field the hub reports that has no recomputation here is listed
 * as unchecked, so a field added to GET /v1/usage shows up until a recomputation is written for it.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { inputBytesOf } from '../../shared/jobs/accounting.js';
import { batchKeys, jobClaimKey } from '../../shared/redis/keys.js';
import { JobIndex } from '../../api/jobs/job-index.js';
import { jobHashKey } from '../../shared/redis/bullmq-internals.js';
import { itemResultBytes, type EntryData, type EntryResult } from '../../shared/predict/entry.js';
import type { History } from './history.js';
import type { Delivery } from './receiver.js';
import type { RedisWindow } from './faults.js';
import { outputKey, type Client, type Ledger, type Tenant, type TrackedJob } from './workload.js';

export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'I6' | 'I7' | 'quiescence';

export interface Violation {
  inv: Invariant;
  msg: string;
  ids: string[];
  at?: number;
}

export class Report {
  readonly violations: Violation[] = [];
  readonly checks = new Map<Invariant, number>();
  readonly notes: string[] = [];
  count(inv: Invariant, n = 1): void {
    this.checks.set(inv, (this.checks.get(inv) ?? 0) + n);
  }
  fail(inv: Invariant, msg: string, ids: string[] = [], at?: number): void {
    this.violations.push({ inv, msg, ids, ...(at !== undefined ? { at } : {}) });
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);
const ALL_STATES = ['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized', 'waiting-children'] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CheckContext {
  client: Client;
  ledger: Ledger;
  tenants: Tenant[];
  admin: Tenant;
  model: string;
  redis: Redis;
  prefix: string;
  queue: Queue;
  bulk: Queue;
  /** The model's predict lane: coalesced predict calls, each an item of an entry. */
  predict: Queue<EntryData, EntryResult>;
  webhooks: Queue;
  deliveries: Delivery[];
  windows: RedisWindow[];
  /** BATCH_CHUNK_SIZE: a batch's staged inputs are one key per chunk of this many items. */
  batchChunkSize: number;
  /** The reconciler's period plus its grace for a submit whose job never appeared, ms. */
  settleMs: number;
  history: History;
}

const tenantOf = (ctx: CheckContext, name: string) => ctx.tenants.find((t) => t.name === name);

/**
 * Whether a coalesced predict call is still indexed (a deleted call's place is gone from its
 * entry's index): read as the API reads it, its own key first, then its entry's.
 */
async function callIndexed(ctx: CheckContext, id: string): Promise<boolean> {
  const index = new JobIndex(ctx.redis, ctx.redis, { prefix: ctx.prefix, ttlS: 0, serves: () => true });
  return (await index.lookUp(id)) !== null;
}

/** Jobs the queue holds now, whoever submitted them (a submit answered 503 may still have stored one). */
async function existingJobs(ctx: CheckContext): Promise<Job[]> {
  const jobs = await ctx.queue.getJobs([...ALL_STATES], 0, -1);
  return jobs.filter((j): j is Job => Boolean(j?.id));
}

/** Coalesced predict calls the predict lane holds now: each item of each entry, with its entry. */
async function existingItems(ctx: CheckContext) {
  const entries = await ctx.predict.getJobs([...ALL_STATES], 0, -1);
  return entries
    .filter((e): e is Job<EntryData, EntryResult> => Boolean(e?.id))
    .flatMap((entry) => entry.data.items.map((item) => ({ entry, item })));
}

async function pendingCounts(q: Queue): Promise<number> {
  const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(c).reduce((s, n) => s + n, 0);
}

/** Waits until every job and batch ended, the queues are empty and no webhook is pending. */
export async function quiesce(ctx: CheckContext, report: Report, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const ended = new Set<string>();
  for (;;) {
    for (const job of await existingJobs(ctx)) {
      const tenant = String(job.data.tenant);
      if (!ctx.ledger.jobs.has(job.id!) && tenantOf(ctx, tenant)) {
        ctx.ledger.job(job.id!, tenant, 'discovered', job.data.webhook?.events ?? []).createdAt =
          job.timestamp - ctx.history.started;
        const state = await job.getState();
        ctx.history.add(
          'note',
          'discovered',
          `a job no answer named: ${state}, created at ${job.timestamp - ctx.history.started} ms`,
          [job.id!],
          tenant,
        );
      }
    }
    for (const { entry, item } of await existingItems(ctx)) {
      const tenant = String(item.tenant);
      // A deleted call's index is gone (its result waits inside the entry for the entry's retention).
      const indexed = await callIndexed(ctx, item.id);
      if (!ctx.ledger.jobs.has(item.id) && tenantOf(ctx, tenant) && indexed) {
        ctx.ledger.job(item.id, tenant, 'discovered', []).createdAt = entry.timestamp - ctx.history.started;
        ctx.history.add('note', 'discovered', 'a predict call no answer named', [item.id], tenant);
      }
    }
    const pending: string[] = [];
    for (const j of ctx.ledger.jobs.values()) {
      if (j.deleted || ended.has(j.id)) continue;
      const a = await ctx.client.call(tenantOf(ctx, j.tenant)!, 'quiesce', 'GET', `/v1/jobs/${j.id}`);
      if (a?.status === 200) ctx.ledger.observe(j.id, a, a.body, 'quiesce');
      if (a?.status === 200 && TERMINAL.has(a.body.status)) ended.add(j.id);
      else if (a?.status === 404 && j.maybeDeleted) {
        // Its DELETE answered 503 yet went through (in part): the job is gone, as asked.
        j.deleted = true;
        ctx.history.add('note', 'deleted', 'a DELETE answered 503 had removed the job', [j.id], j.tenant);
      } else if (a?.status === 404) {
        ended.add(j.id);
        report.fail(
          'I1',
          j.via === 'discovered'
            ? 'a job the queue holds reads 404 for its own tenant (no answer named it: its submit failed)'
            : 'an accepted job reads 404 (never deleted)',
          [j.id],
          j.createdAt,
        );
      } else pending.push(`job ${j.id}: ${a?.status} ${a?.body?.status ?? a?.body?.error_code}`);
    }
    for (const b of ctx.ledger.batches.values()) {
      if (ended.has(b.id)) continue;
      const a = await ctx.client.call(tenantOf(ctx, b.tenant)!, 'quiesce', 'GET', `/v1/batches/${b.id}`);
      if (a?.status === 200 && a.body.counts.queued + a.body.counts.running === 0 && a.body.completed_at)
        ended.add(b.id);
      else pending.push(`batch ${b.id}: ${a?.status} ${JSON.stringify(a?.body?.counts)}`);
    }
    for (const [name, q] of [
      ['model queue', ctx.queue],
      ['bulk lane', ctx.bulk],
      ['predict lane', ctx.predict],
      ['webhook queue', ctx.webhooks],
    ] as const) {
      const n = await pendingCounts(q);
      if (n > 0) pending.push(`${name}: ${n} pending`);
    }
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      const ids = pending.map((p) => /^(?:job|batch) ([^:]+):/.exec(p)?.[1]).filter((x): x is string => Boolean(x));
      report.fail(
        'quiescence',
        `not quiet after ${timeoutMs / 1000} s: ${pending.slice(0, 10).join('; ')}`,
        ids.slice(0, 5),
      );
      return false;
    }
    await sleep(500);
  }
  // One last reading of every job: I1 compares it with every earlier one.
  for (const j of ctx.ledger.jobs.values()) {
    if (j.deleted) continue;
    const a = await ctx.client.call(tenantOf(ctx, j.tenant)!, 'final', 'GET', `/v1/jobs/${j.id}`);
    if (a?.status === 200) ctx.ledger.observe(j.id, a, a.body, 'final');
    else report.fail('I1', `the job reads ${a?.status} after quiescence`, [j.id]);
  }
  return true;
}

/** I1–I3: each job's end, its output, its cancel. */
export function checkJobs(ctx: CheckContext, report: Report): void {
  const completedBodies = new Map<string, any[]>();
  for (const d of ctx.deliveries) {
    const m = /^msg_(.+)_completed$/.exec(d.webhookId);
    if (m) completedBodies.set(m[1], [...(completedBodies.get(m[1]) ?? []), d.json]);
  }
  for (const j of ctx.ledger.jobs.values()) {
    if (j.idempotencyKey?.includes('second job')) {
      report.fail('I1', `an Idempotency-Key replay created a second job (${j.idempotencyKey})`, [j.id]);
    }
    const obs = [...j.obs].sort((a, b) => a.received - b.received);
    const final = obs.at(-1);
    // I1: ends in one terminal state and never changes it.
    report.count('I1');
    if (!j.deleted && (!final || !TERMINAL.has(final.status)))
      report.fail('I1', `job did not end: last seen ${final?.status ?? 'never'}`, [j.id]);
    for (const a of obs) {
      if (!TERMINAL.has(a.status)) continue;
      const later = obs.find((b) => b.sent > a.received && b.status !== a.status);
      if (later) {
        report.fail(
          'I1',
          `job read ${a.status} (${a.via}, answered at ${a.received} ms), then ${later.status} (${later.via}, asked at ${later.sent} ms)`,
          [j.id],
          later.received,
        );
        break;
      }
    }
    for (const body of completedBodies.get(j.id) ?? []) {
      report.count('I1');
      if (!j.deleted && final && body?.status !== final.status)
        report.fail('I1', `its completed webhook says ${body?.status}, the job ends ${final.status}`, [j.id]);
    }
    // I2: a succeeded output is never lost (unless deleted by its owner).
    const succeeded = obs.filter((o) => o.status === 'succeeded');
    if (succeeded.length) {
      report.count('I2');
      if (!j.deleted) {
        const last = obs.at(-1)!;
        if (last.status !== 'succeeded') report.fail('I2', `succeeded earlier, now ${last.status}`, [j.id]);
        const outputs = new Set(succeeded.map((o) => o.output));
        if (outputs.has(undefined)) report.fail('I2', 'read succeeded without an output', [j.id]);
        if (outputs.size > 1)
          report.fail('I2', `its output changed between readings (${outputs.size} versions)`, [j.id]);
      }
    }
    // I3: canceled means no output and no succeeded webhook.
    const canceled = j.canceled || obs.some((o) => o.status === 'canceled');
    if (canceled) {
      report.count('I3');
      if (succeeded.length) report.fail('I3', `canceled, yet read succeeded (${succeeded[0].via})`, [j.id]);
      if (!j.deleted && final?.status !== 'canceled')
        report.fail('I3', `the cancel answered 200, the job ends ${final?.status}`, [j.id]);
      if ((completedBodies.get(j.id) ?? []).some((b) => b?.status === 'succeeded'))
        report.fail('I3', 'canceled, yet a succeeded webhook was sent', [j.id]);
    }
  }
}

/** I4: each event's webhook-id accepted exactly once, signed. */
export function checkWebhooks(ctx: CheckContext, report: Report): void {
  const accepted = new Map<string, number>();
  for (const d of ctx.deliveries) {
    report.count('I4');
    if (!d.signatureOk) report.fail('I4', `delivery ${d.webhookId} has a bad signature`, [idOf(d.webhookId)], d.t);
    if (d.accepted) accepted.set(d.webhookId, (accepted.get(d.webhookId) ?? 0) + 1);
  }
  for (const [id, n] of accepted) if (n > 1) report.fail('I4', `webhook-id ${id} accepted ${n} times`, [idOf(id)]);
  const expect = (msgId: string, subject: string) => {
    report.count('I4');
    if (!accepted.has(msgId)) report.fail('I4', `event ${msgId} never accepted`, [subject]);
  };
  for (const j of ctx.ledger.jobs.values())
    if (!j.deleted && j.webhookEvents.includes('completed')) expect(`msg_${j.id}_completed`, j.id);
  for (const b of ctx.ledger.batches.values()) if (b.webhook) expect(`msg_${b.id}_batch.completed`, b.id);
}

const idOf = (webhookId: string) => /^msg_(.+?)_(start|completed|batch\.completed)$/.exec(webhookId)?.[1] ?? webhookId;

/** I6: every batch item ends exactly once, and its results never change. */
export async function checkBatches(
  ctx: CheckContext,
  report: Report,
  firstRead?: Map<string, string>,
): Promise<Map<string, string>> {
  const reads = new Map<string, string>();
  for (const b of ctx.ledger.batches.values()) {
    const tenant = tenantOf(ctx, b.tenant)!;
    const view = await ctx.client.call(tenant, 'check', 'GET', `/v1/batches/${b.id}`);
    const res = await ctx.client.call(tenant, 'check', 'GET', `/v1/batches/${b.id}/results?order=input`);
    report.count('I6');
    if (view?.status !== 200 || res?.status !== 200) {
      report.fail('I6', `batch unreadable: ${view?.status} / ${res?.status}`, [b.id]);
      continue;
    }
    const c = view.body.counts;
    if (c.total !== b.items || c.queued !== 0 || c.running !== 0 || c.succeeded + c.failed + c.canceled !== b.items)
      report.fail('I6', `counts ${JSON.stringify(c)} for ${b.items} items`, [b.id]);
    if (b.canceled && view.body.status !== 'canceled' && view.body.status !== 'completed')
      report.fail('I6', `canceled batch reads ${view.body.status}`, [b.id]);
    const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { index: number; status: string });
    const seen = new Map<number, number>();
    for (const l of lines) seen.set(l.index, (seen.get(l.index) ?? 0) + 1);
    for (let i = 0; i < b.items; i++) {
      report.count('I6');
      const n = seen.get(i) ?? 0;
      if (n !== 1) report.fail('I6', `item ${i} has ${n} result lines`, [b.id]);
    }
    if ([...seen.keys()].some((i) => i < 0 || i >= b.items)) report.fail('I6', 'a result line for no item', [b.id]);
    const byStatus = (s: string) => lines.filter((l) => l.status === s).length;
    if (byStatus('succeeded') !== c.succeeded || byStatus('failed') !== c.failed || byStatus('canceled') !== c.canceled)
      report.fail('I6', `result lines disagree with counts ${JSON.stringify(c)}`, [b.id]);
    const key = lines
      .map((l) => JSON.stringify(l))
      .sort()
      .join('\n');
    reads.set(b.id, key);
    if (firstRead && firstRead.get(b.id) !== key)
      report.fail('I6', 'its results changed after the batch ended', [b.id]);
  }
  return reads;
}

/** I7: no 5xx but a 503 with Retry-After (and predict's documented 504 / job outcomes). */
export function checkServerErrors(ctx: CheckContext, report: Report): void {
  report.count('I7', ctx.client.answers);
  for (const u of ctx.client.unanswered) report.fail('I7', `no answer to ${u.op}: ${u.error}`, [], u.t);
  let outside = 0;
  for (const e of ctx.client.serverErrors) {
    let body: any = null;
    try {
      body = JSON.parse(e.body);
    } catch {
      // not JSON: judged by status alone
    }
    if (e.status === 503 && e.retryAfter) {
      if (!ctx.windows.some((w) => e.t >= w.from - 1000 && e.t <= w.to + 6000)) outside++;
      continue;
    }
    // predict answers a failed job with its error's status, and 504 (1502) past its wait.
    if (
      e.op === 'predict' &&
      body?.success === false &&
      body.request_id &&
      [1502, 2001, 2002].includes(body.error_code)
    )
      continue;
    report.fail('I7', `${e.op} answered ${e.status}${e.retryAfter ? '' : ' without Retry-After'}: ${e.body}`, [], e.t);
  }
  if (outside) report.notes.push(`${outside} 503s (with Retry-After) came outside a Redis fault window`);
}

type UsageFields = Record<string, number>;

/**
 * I5's recomputation: per tenant and model, from the jobs the queue holds, by their state in the
 * queue and their stored result (never the counters). Add a field here when GET /v1/usage gains one.
 */
const zeroUsage = (): UsageFields => ({
  waiting: 0,
  stored_bytes: 0,
  batches_in_flight: 0,
  batch_items: 0,
  batch_stored_bytes: 0,
});

async function expectedUsage(ctx: CheckContext): Promise<Map<string, UsageFields>> {
  const out = new Map<string, UsageFields>();
  for (const t of [...ctx.tenants, ctx.admin]) out.set(t.name, zeroUsage());
  // Batches: those not ended hold their unended items, and the staged inputs of their unfinished
  // chunks count in both batch_stored_bytes and stored_bytes (at quiescence all of it is zero).
  for (const b of ctx.ledger.batches.values()) {
    const fields = out.get(b.tenant)!;
    const a = await ctx.client.call(tenantOf(ctx, b.tenant)!, 'usage-check', 'GET', `/v1/batches/${b.id}`);
    if (a?.status !== 200) continue;
    const c = a.body.counts;
    if (c.queued + c.running === 0 && a.body.completed_at) continue;
    fields.batches_in_flight += 1;
    fields.batch_items += c.queued + c.running;
    for (let chunk = 0; chunk * ctx.batchChunkSize < b.items; chunk++) {
      const bytes = await ctx.redis.strlen(batchKeys(ctx.prefix, b.id).input(chunk));
      fields.batch_stored_bytes += bytes;
      fields.stored_bytes += bytes;
    }
  }
  for (const state of ALL_STATES) {
    for (const job of await ctx.queue.getJobs([state], 0, -1)) {
      const fields = job?.id ? out.get(String(job.data.tenant)) : undefined;
      if (!fields) continue;
      // A queued job a cancel claimed holds nothing; a worker drops it unrun when it fetches it.
      const canceled = (await ctx.redis.get(jobClaimKey(ctx.prefix, ctx.model, job.id!))) === 'canceled';
      if (state === 'completed') {
        fields.stored_bytes += await ctx.redis.hstrlen(jobHashKey(ctx.prefix, ctx.model, job.id!), 'returnvalue');
      } else if (state === 'active' && !canceled) {
        fields.stored_bytes += inputBytesOf(job.data.input);
      } else if (state !== 'failed' && !canceled) {
        fields.waiting += 1;
        fields.stored_bytes += inputBytesOf(job.data.input);
      }
    }
  }
  // Coalesced predict calls: each item counts for its own tenant as a job of its own would, and a
  // deleted one (its index gone) holds nothing.
  for (const state of ALL_STATES) {
    for (const entry of await ctx.predict.getJobs([state], 0, -1)) {
      if (!entry?.id) continue;
      for (const item of entry.data.items) {
        const fields = out.get(String(item.tenant));
        if (!fields || !(await callIndexed(ctx, item.id))) continue;
        if (state === 'completed') {
          const own = (entry.returnvalue as EntryResult | null)?.items.find((r) => r.id === item.id);
          fields.stored_bytes += own ? itemResultBytes(own) : 0;
        } else if (state === 'active') {
          fields.stored_bytes += inputBytesOf(item.input);
        } else if (state !== 'failed') {
          fields.waiting += 1;
          fields.stored_bytes += inputBytesOf(item.input);
        }
      }
    }
  }
  return out;
}

async function reportedUsage(ctx: CheckContext, tenant: string): Promise<Record<string, UsageFields> | null> {
  const a = await ctx.client.call(ctx.admin, 'usage-check', 'GET', `/v1/usage?tenant=${encodeURIComponent(tenant)}`);
  if (a?.status !== 200) return null;
  const models: Record<string, UsageFields> = {};
  for (const [model, view] of Object.entries(a.body.models as Record<string, Record<string, unknown>>)) {
    models[model] = {};
    // A count is either `{ used, limit }` or a bare number.
    for (const [field, v] of Object.entries(view))
      if (typeof v === 'number') models[model][field] = v;
      else if (v && typeof v === 'object' && typeof (v as { used?: unknown }).used === 'number')
        models[model][field] = (v as { used: number }).used;
  }
  return models;
}

/** Differences between the usage reported and recomputed (other models must read zero). */
async function usageDiffs(ctx: CheckContext, zero: boolean, unchecked: Set<string>): Promise<string[]> {
  const expected = zero ? null : await expectedUsage(ctx);
  const diffs: string[] = [];
  for (const t of [...ctx.tenants, ctx.admin]) {
    const reported = await reportedUsage(ctx, t.name);
    if (!reported) {
      diffs.push(`${t.name}: usage unreadable`);
      continue;
    }
    for (const [model, fields] of Object.entries(reported)) {
      const want: UsageFields = (model === ctx.model && expected?.get(t.name)) || zeroUsage();
      for (const [field, used] of Object.entries(fields)) {
        if (!(field in want)) {
          unchecked.add(field);
          continue;
        }
        if (used !== want[field])
          diffs.push(`${t.name} ${model} ${field}: reported ${used}, recomputed ${want[field]}`);
      }
    }
  }
  return diffs;
}

/** I5: usage equals the recomputation (within the reconciler's settle time), and zero once all is deleted. */
export async function checkUsage(ctx: CheckContext, report: Report): Promise<void> {
  const unchecked = new Set<string>();
  const settle = async (zero: boolean, what: string) => {
    const start = Date.now();
    let diffs: string[];
    for (;;) {
      diffs = await usageDiffs(ctx, zero, unchecked);
      report.count('I5');
      if (diffs.length === 0) {
        report.notes.push(`usage ${what}: equal after ${((Date.now() - start) / 1000).toFixed(1)} s`);
        return;
      }
      if (Date.now() - start > ctx.settleMs) break;
      await sleep(1000);
    }
    report.fail('I5', `usage ${what} still differs after ${ctx.settleMs / 1000} s: ${diffs.slice(0, 6).join('; ')}`);
  };
  await settle(false, 'against the jobs that exist');
  // Delete every job that is left, through the API, as its owner.
  const toDelete: { id: string; tenant: string }[] = [];
  for (const j of ctx.ledger.jobs.values()) if (!j.deleted) toDelete.push({ id: j.id, tenant: j.tenant });
  for (const job of await existingJobs(ctx))
    if (!toDelete.some((d) => d.id === job.id)) toDelete.push({ id: job.id!, tenant: String(job.data.tenant) });
  for (const { item } of await existingItems(ctx))
    if (!toDelete.some((d) => d.id === item.id)) toDelete.push({ id: item.id, tenant: String(item.tenant) });
  for (const d of toDelete) {
    const tenant = tenantOf(ctx, d.tenant);
    if (!tenant) continue;
    const a = await ctx.client.call(tenant, 'delete-all', 'DELETE', `/v1/jobs/${d.id}`);
    if (a?.status === 200) markDeleted(ctx.ledger.jobs.get(d.id));
    else if (a?.status !== 404) report.fail('I5', `DELETE answered ${a?.status} after quiescence`, [d.id]);
  }
  await settle(true, 'once every job is deleted');
  if (unchecked.size)
    report.notes.push(`usage fields reported but not recomputed (unchecked): ${[...unchecked].join(', ')}`);
}

function markDeleted(j: TrackedJob | undefined): void {
  if (j) j.deleted = true;
}

export { outputKey };
