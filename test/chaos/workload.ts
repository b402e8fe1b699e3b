/**
 * Three tenants' clients: each loop draws its next operation from its own seeded stream and
 * records what it sent and what the hub answered. Every answer is kept for I7 (which 5xx came
 * back, and when); every job and batch the hub told us about is tracked for I1–I6.
 */
import type { History } from './history.js';
import type { Rng } from './prng.js';

export interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
  sent: number;
  received: number;
}

export interface ServerError {
  t: number;
  op: string;
  status: number;
  retryAfter: string | null;
  body: string;
}

/** One reading of a job's status, with when the request was sent and its answer received. */
export interface JobObservation {
  sent: number;
  received: number;
  status: string;
  /** The output (JSON) when succeeded. */
  output?: string;
  via: string;
}

export interface TrackedJob {
  id: string;
  tenant: string;
  via: 'submit' | 'predict' | 'discovered';
  webhookEvents: string[];
  idempotencyKey?: string;
  obs: JobObservation[];
  /** A cancel answered 200 (the job is canceled). */
  canceled: boolean;
  deleted: boolean;
  /** A DELETE got a 503 or no answer: it may have removed the job (or part of it) all the same. */
  maybeDeleted?: boolean;
  /** When the job was created, ms since the run started (discovered jobs). */
  createdAt?: number;
}

export interface TrackedBatch {
  id: string;
  tenant: string;
  items: number;
  webhook: boolean;
  canceled: boolean;
}

export interface Tenant {
  name: string;
  key: string;
}

export class Client {
  readonly serverErrors: ServerError[] = [];
  /** Requests that got no HTTP answer at all (the API must always answer). */
  readonly unanswered: { t: number; op: string; error: string }[] = [];
  answers = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly history: History,
  ) {}

  async call(
    tenant: Tenant,
    op: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer | null> {
    const sent = this.history.now();
    try {
      const r = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${tenant.key}`, 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(90_000),
      });
      const text = await r.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // kept as text (JSONL results are parsed by their caller)
      }
      const received = this.history.now();
      this.answers++;
      const retryAfter = r.headers.get('retry-after');
      if (r.status >= 500)
        this.serverErrors.push({ t: received, op, status: r.status, retryAfter, body: text.slice(0, 300) });
      return { status: r.status, body: parsed, retryAfter, sent, received };
    } catch (err) {
      this.unanswered.push({ t: this.history.now(), op, error: (err as Error).message });
      this.history.add('note', 'unanswered', `${op} ${method} ${path}: ${(err as Error).message}`, [], tenant.name);
      return null;
    }
  }
}

/** Everything the run learnt about the hub's jobs and batches. */
export class Ledger {
  readonly jobs = new Map<string, TrackedJob>();
  readonly batches = new Map<string, TrackedBatch>();
  /** Idempotency-Key → the submit body and the job it created. */
  readonly idempotent = new Map<string, { tenant: string; body: unknown; id: string }>();

  job(id: string, tenant: string, via: TrackedJob['via'], webhookEvents: string[] = []): TrackedJob {
    let j = this.jobs.get(id);
    if (!j) {
      j = { id, tenant, via, webhookEvents, obs: [], canceled: false, deleted: false };
      this.jobs.set(id, j);
    }
    return j;
  }

  observe(id: string, a: Answer, view: any, via: string): void {
    const j = this.jobs.get(id);
    if (!j || !view || typeof view.status !== 'string') return;
    j.obs.push({
      sent: a.sent,
      received: a.received,
      status: view.status,
      ...(view.status === 'succeeded' && view.output ? { output: outputKey(view.output) } : {}),
      via,
    });
  }
}

export interface WorkloadOptions {
  model: string;
  images: string[];
  webhookUrl: string;
  /** Ops stop being started at this many ms since the run started. */
  until: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type OpName =
  | 'submit'
  | 'burst'
  | 'replay'
  | 'poll'
  | 'cancel'
  | 'cancel-race'
  | 'delete'
  | 'predict'
  | 'batch-submit'
  | 'batch-cancel'
  | 'batch-poll'
  | 'usage';

const WEIGHTS: Record<OpName, number> = {
  submit: 30,
  burst: 3,
  replay: 4,
  poll: 22,
  cancel: 10,
  'cancel-race': 6,
  delete: 6,
  predict: 6,
  'batch-submit': 4,
  'batch-cancel': 2,
  'batch-poll': 3,
  usage: 2,
};

/** A succeeded output as compared across readings (predict's answer and GET's output carry the same fields). */
export function outputKey(output: Record<string, unknown>): string {
  // A predict answer's `metrics` (entry_items) is about its delivery, not its output.
  const { request_id: _r, success: _s, error_code: _e, metrics: _m, ...rest } = output;
  return JSON.stringify(rest);
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

export function lastStatus(j: TrackedJob): string | undefined {
  return j.obs.length ? j.obs.reduce((a, b) => (b.received >= a.received ? b : a)).status : undefined;
}

/** One client loop of one tenant: draws and runs operations until `until`. */
export async function tenantLoop(
  rng: Rng,
  tenant: Tenant,
  client: Client,
  ledger: Ledger,
  history: History,
  opts: WorkloadOptions,
): Promise<void> {
  const mine = () => [...ledger.jobs.values()].filter((j) => j.tenant === tenant.name && !j.deleted);
  const myBatches = () => [...ledger.batches.values()].filter((b) => b.tenant === tenant.name);
  const m = opts.model;
  let keySeq = 0;

  const submit = async (mayCancel = true) => {
    const body: Record<string, unknown> = { input: { image: rng.pick(opts.images) } };
    let events: string[] = [];
    if (rng.chance(0.5)) {
      events = rng.chance(0.5) ? ['completed'] : ['start', 'completed'];
      body.webhook = opts.webhookUrl;
      body.webhook_events_filter = events;
    }
    if (rng.chance(0.3)) body.priority = rng.int(3, 10);
    if (rng.chance(0.2)) body.timeout_s = rng.int(1, 8);
    const headers: Record<string, string> = {};
    const key = rng.chance(0.25) ? `${tenant.name}-${rng.int(0, 1e9)}-${keySeq++}` : undefined;
    if (key) headers['idempotency-key'] = key;
    if (rng.chance(0.1)) headers.prefer = `wait=${rng.int(1, 3)}`;
    const a = await client.call(tenant, 'submit', 'POST', `/v1/models/${m}/jobs`, body, headers);
    const desc = `${describe(body)}${key ? ` key=${key}` : ''}`;
    if (a && (a.status === 202 || a.status === 200) && typeof a.body?.id === 'string') {
      const j = ledger.job(a.body.id, tenant.name, 'submit', events);
      if (key) {
        j.idempotencyKey = key;
        ledger.idempotent.set(key, { tenant: tenant.name, body, id: j.id });
      }
      ledger.observe(j.id, a, a.body, 'submit');
      history.add('op', 'submit', `${desc} → ${a.status} ${a.body.status}`, [j.id], tenant.name);
      // Now and then a cancel right away: it races the worker's claim of the job.
      if (mayCancel && rng.chance(0.15)) await cancelJob(j);
    } else {
      history.add('op', 'submit', `${desc} → ${answerText(a)}`, [], tenant.name);
    }
  };

  // A burst fills the queue past the workers' slots, and cancels some of it while it waits.
  const burst = async () => {
    const before = ledger.jobs.size;
    const n = rng.int(8, 30);
    const cancels = Array.from({ length: n }, () => rng.chance(0.4));
    await Promise.all(Array.from({ length: n }, () => submit(false)));
    const fresh = [...ledger.jobs.values()].slice(before).filter((j) => j.tenant === tenant.name);
    history.add('op', 'burst', `${n} submits, ${fresh.length} accepted`, [], tenant.name);
    await Promise.all(fresh.filter((_, i) => cancels[i]).map((j) => cancelJob(j)));
  };

  const replay = async () => {
    const keys = [...ledger.idempotent.entries()].filter(([, v]) => v.tenant === tenant.name);
    if (keys.length === 0) return submit(true);
    const [key, { body, id }] = rng.pick(keys);
    const a = await client.call(tenant, 'replay', 'POST', `/v1/models/${m}/jobs`, body, { 'idempotency-key': key });
    if (a && (a.status === 200 || a.status === 202)) {
      const got = String(a.body?.id);
      if (got === id) ledger.observe(id, a, a.body, 'replay');
      else ledger.job(got, tenant.name, 'submit').idempotencyKey = `${key} (replay, second job!)`;
      history.add('op', 'replay', `key=${key} → ${a.status} ${got}`, [id, got], tenant.name);
    } else history.add('op', 'replay', `key=${key} → ${answerText(a)}`, [id], tenant.name);
  };

  const pickJob = (preferOpen: boolean) => {
    const jobs = mine();
    if (jobs.length === 0) return undefined;
    if (preferOpen && rng.chance(0.7)) {
      const open = jobs.filter((j) => !TERMINAL.has(lastStatus(j) ?? 'queued'));
      if (open.length) return rng.pick(open);
    }
    // Recent jobs more often: the last 30.
    return rng.chance(0.6) ? rng.pick(jobs.slice(-30)) : rng.pick(jobs);
  };

  const poll = async () => {
    const j = pickJob(true);
    if (!j) return submit(true);
    const a = await client.call(tenant, 'poll', 'GET', `/v1/jobs/${j.id}`);
    if (a?.status === 200) ledger.observe(j.id, a, a.body, 'poll');
    history.add('op', 'poll', `→ ${answerText(a)}`, [j.id], tenant.name);
  };

  const cancel = async () => {
    const j = pickJob(true);
    if (!j) return submit(true);
    await cancelJob(j);
  };

  const cancelJob = async (j: TrackedJob) => {
    const a = await client.call(tenant, 'cancel', 'POST', `/v1/jobs/${j.id}/cancel`);
    if (a?.status === 200) {
      j.canceled = true;
      ledger.observe(j.id, a, a.body, 'cancel');
    }
    history.add('op', 'cancel', `→ ${answerText(a)}`, [j.id], tenant.name);
  };

  // A client that submits a job, waits until it runs, then keeps canceling it (reading it in
  // between) until the cancel is settled: its cancels land right as the job finishes, when a
  // cancel must lose (409) and the job keep its result.
  const cancelRace = async () => {
    const before = ledger.jobs.size;
    await submit(false);
    const j = [...ledger.jobs.values()].slice(before).find((x) => x.tenant === tenant.name && x.via === 'submit');
    if (!j) return;
    const until = history.now() + 3000;
    const seen: string[] = [];
    let running = false;
    while (history.now() < until) {
      const g = await client.call(tenant, 'cancel-race', 'GET', `/v1/jobs/${j.id}`);
      if (g?.status === 200) ledger.observe(j.id, g, g.body, 'cancel-race poll');
      const status = g?.status === 200 ? String(g.body.status) : `${g?.status}`;
      if (status === 'running') running = true;
      if (!running && status === 'queued') continue;
      seen.push(`read ${status}`);
      // Several at once, so some read the job's state just before it finishes and claim just after;
      // reads beside them, so a job that succeeded and was then canceled anyway shows (I1, I2).
      let settled = false;
      for (let round = 0; round < 20 && !settled; round++) {
        const reads = Array.from({ length: 2 }, async () => {
          const r = await client.call(tenant, 'cancel-race', 'GET', `/v1/jobs/${j.id}`);
          if (r?.status === 200) ledger.observe(j.id, r, r.body, 'cancel-race poll');
        });
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => client.call(tenant, 'cancel-race', 'POST', `/v1/jobs/${j.id}/cancel`)),
        );
        await Promise.all(reads);
        for (const c of answers) {
          if (!c) {
            settled = true;
            continue;
          }
          seen.push(answerText(c));
          if (c.status === 200) {
            j.canceled = true;
            ledger.observe(j.id, c, c.body, 'cancel-race');
          }
          if (c.status !== 409 || !/running/.test(String(c.body?.error_msg))) settled = true;
        }
      }
      if (settled) break;
    }
    const counts = new Map<string, number>();
    for (const x of seen) counts.set(x, (counts.get(x) ?? 0) + 1);
    history.add(
      'op',
      'cancel-race',
      [...counts.entries()].map(([k, n]) => `${n}× ${k}`).join(', ') + ` → last ${seen.at(-1) ?? 'none'}`,
      [j.id],
      tenant.name,
    );
  };

  const del = async () => {
    const done = mine().filter((j) => TERMINAL.has(lastStatus(j) ?? ''));
    if (done.length === 0) return poll();
    const j = rng.pick(done);
    const a = await client.call(tenant, 'delete', 'DELETE', `/v1/jobs/${j.id}`);
    if (a?.status === 200) j.deleted = true;
    else if (!a || a.status >= 500) j.maybeDeleted = true;
    history.add('op', 'delete', `→ ${answerText(a)}`, [j.id], tenant.name);
  };

  const predict = async () => {
    const a = await client.call(tenant, 'predict', 'POST', `/v1/models/${m}/predict`, {
      image: rng.pick(opts.images),
    });
    const id = typeof a?.body?.request_id === 'string' ? (a.body.request_id as string) : undefined;
    if (a && id) {
      const j = ledger.job(id, tenant.name, 'predict');
      if (a.status === 200) {
        j.obs.push({
          sent: a.sent,
          received: a.received,
          status: 'succeeded',
          via: 'predict',
          output: outputKey(a.body),
        });
      } else if (a.body?.success === false && [2001, 2002, 2003, 1003].includes(a.body.error_code)) {
        j.obs.push({
          sent: a.sent,
          received: a.received,
          status: a.body.error_code === 2003 ? 'canceled' : 'failed',
          via: 'predict',
        });
      }
    }
    history.add('op', 'predict', `→ ${answerText(a)}`, id ? [id] : [], tenant.name);
  };

  const batchSubmit = async () => {
    const n = rng.int(2, 12);
    const body: Record<string, unknown> = {
      inputs: Array.from({ length: n }, () => ({ image: rng.pick(opts.images) })),
    };
    const webhook = rng.chance(0.5);
    if (webhook) body.webhook = opts.webhookUrl;
    if (rng.chance(0.3)) body.priority = rng.int(3, 10);
    const a = await client.call(tenant, 'batch-submit', 'POST', `/v1/models/${m}/batches`, body);
    if (a?.status === 202 && typeof a.body?.id === 'string') {
      ledger.batches.set(a.body.id, { id: a.body.id, tenant: tenant.name, items: n, webhook, canceled: false });
      history.add('op', 'batch-submit', `${n} items${webhook ? ' webhook' : ''} → 202`, [a.body.id], tenant.name);
    } else history.add('op', 'batch-submit', `${n} items → ${answerText(a)}`, [], tenant.name);
  };

  const batchCancel = async () => {
    const bs = myBatches();
    if (bs.length === 0) return batchSubmit();
    const b = rng.pick(bs.slice(-5));
    const a = await client.call(tenant, 'batch-cancel', 'POST', `/v1/batches/${b.id}/cancel`);
    if (a?.status === 200) b.canceled = true;
    history.add('op', 'batch-cancel', `→ ${answerText(a)}`, [b.id], tenant.name);
  };

  const batchPoll = async () => {
    const bs = myBatches();
    if (bs.length === 0) return batchSubmit();
    const b = rng.pick(bs.slice(-5));
    const a = await client.call(tenant, 'batch-poll', 'GET', `/v1/batches/${b.id}`);
    history.add('op', 'batch-poll', `→ ${answerText(a)}`, [b.id], tenant.name);
  };

  const usage = async () => {
    const a = await client.call(tenant, 'usage', 'GET', '/v1/usage');
    const u = a?.status === 200 ? a.body?.models?.[m] : undefined;
    history.add(
      'op',
      'usage',
      u ? `waiting ${u.waiting?.used} stored ${u.stored_bytes?.used}` : `→ ${answerText(a)}`,
      [],
      tenant.name,
    );
  };

  const ops: Record<OpName, () => Promise<void>> = {
    submit,
    burst,
    replay,
    poll,
    cancel,
    'cancel-race': cancelRace,
    delete: del,
    predict,
    'batch-submit': batchSubmit,
    'batch-cancel': batchCancel,
    'batch-poll': batchPoll,
    usage,
  };
  while (history.now() < opts.until) {
    await ops[rng.weighted(WEIGHTS)]();
    await sleep(rng.int(10, 120));
  }
}

function describe(body: Record<string, unknown>): string {
  const parts: string[] = [];
  if (body.webhook) parts.push(`webhook(${(body.webhook_events_filter as string[]).join('+')})`);
  if (body.priority !== undefined) parts.push(`p${String(body.priority)}`);
  if (body.timeout_s !== undefined) parts.push(`timeout ${String(body.timeout_s)}s`);
  return parts.join(' ') || 'plain';
}

export function answerText(a: Answer | null): string {
  if (!a) return 'no answer';
  const code = a.body && typeof a.body === 'object' && 'error_code' in a.body ? ` (${String(a.body.error_code)})` : '';
  const status = a.body && typeof a.body === 'object' && typeof a.body.status === 'string' ? ` ${a.body.status}` : '';
  return `${a.status}${code}${status}`;
}
