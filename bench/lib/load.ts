/**
 * Closed-loop load: `concurrency` clients, each sending its next request as soon as the last
 * one answered, over keep-alive connections (node:http, cheaper per request than fetch, so the
 * clients take less of the shared CPU). Requests started during the warm-up are not measured.
 */
import http from 'node:http';

export type Mode = 'predict' | 'poll' | 'wait' | 'bare';

export interface LoadResult {
  concurrency: number;
  jobs: number;
  seconds: number;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  failed: number;
}

interface Reply {
  status: number;
  body: string;
}

export class HttpClient {
  private readonly agent: http.Agent;
  constructor(
    private readonly baseUrl: string,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request(method: 'GET' | 'POST', path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
    const url = new URL(path, this.baseUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        {
          method,
          agent: this.agent,
          headers:
            body === undefined
              ? headers
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Target {
  /** POST path of a predict-like request, or of job submission for poll/wait. */
  path: string;
  body: string[];
  mode: Mode;
  /** Poll interval for mode "poll", ms. */
  pollMs?: number;
  /** Sent with every request (e.g. an API key). */
  headers?: Record<string, string>;
}

/** One request cycle of a mode; resolves true on success. */
async function cycle(client: HttpClient, t: Target, body: string): Promise<boolean> {
  switch (t.mode) {
    case 'predict':
    case 'bare': {
      const r = await client.request('POST', t.path, body, t.headers);
      return r.status === 200;
    }
    case 'wait': {
      const r = await client.request('POST', t.path, body, { prefer: 'wait=60', ...t.headers });
      return r.status === 200 && JSON.parse(r.body).status === 'succeeded';
    }
    case 'poll': {
      const r = await client.request('POST', t.path, body, t.headers);
      if (r.status !== 202 && r.status !== 200) return false;
      const id = JSON.parse(r.body).id as string;
      for (;;) {
        await new Promise((res) => setTimeout(res, t.pollMs ?? 20));
        const g = await client.request('GET', `/v1/jobs/${id}`, undefined, t.headers);
        const status = JSON.parse(g.body).status as string;
        if (status !== 'queued' && status !== 'running') return status === 'succeeded';
      }
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Runs the load for warmupS + seconds; `onMeasureStart/End` fire at the measured window's ends
 * (CPU and Redis snapshots are taken there).
 */
export async function runLoad(
  baseUrl: string,
  target: Target,
  concurrency: number,
  seconds: number,
  warmupS: number,
  hooks: { onMeasureStart?: () => void | Promise<void>; onMeasureEnd?: () => void | Promise<void> } = {},
): Promise<LoadResult> {
  const client = new HttpClient(baseUrl, concurrency);
  const t0 = performance.now();
  const measureFrom = t0 + warmupS * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const latencies: number[] = [];
  let completedInWindow = 0;
  let failed = 0;
  let next = 0;
  // Snapshots fire once each, in order, even when the timers and the last request race.
  let started: Promise<void> | undefined;
  let ended: Promise<void> | undefined;
  const fireStart = () => (started ??= Promise.resolve(hooks.onMeasureStart?.()));
  const fireEnd = () => (ended ??= fireStart().then(() => hooks.onMeasureEnd?.()));
  const startTimer = setTimeout(() => void fireStart(), warmupS * 1000);
  const endTimer = setTimeout(() => void fireEnd(), (warmupS + seconds) * 1000);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt) {
        const body = target.body[next++ % target.body.length];
        const started = performance.now();
        let ok: boolean;
        try {
          ok = await cycle(client, target, body);
        } catch {
          ok = false;
        }
        const ended = performance.now();
        if (!ok) failed += 1;
        if (started >= measureFrom && ok) latencies.push(ended - started);
        if (ended >= measureFrom && ended <= stopAt && ok) completedInWindow += 1;
      }
    }),
  );
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  await fireEnd();
  client.close();
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    jobs: completedInWindow,
    seconds,
    throughput: completedInWindow / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    failed,
  };
}

export interface InterleavedResult {
  /** Each URL's p50 over the window, ms, in the order given. */
  p50: number[];
  /** Each URL's answered calls in the window. */
  calls: number[];
  failed: number;
}

/**
 * One client, one call at a time, sent in turn to each of two services (orders A B, B A, A B, …,
 * each body to both): the same load as c=1 for each, at the same moments of the host. Comparing
 * windows run one after the other instead compared the host's moments: a busy neighbour for two
 * seconds moved one side's p50 by up to a third. The window lasts `seconds` and until each side
 * has `minCalls` answers (a p50 of the 16 calls a DBNet page got in 2 s moved by 5 %). `target`
 * is what both are sent, or one per service (the hub against the bare round trip).
 */
export async function runInterleaved(
  baseUrls: [string, string],
  target: Target | readonly [Target, Target],
  seconds: number,
  warmupS: number,
  minCalls = 100,
): Promise<InterleavedResult> {
  const clients = baseUrls.map((u) => new HttpClient(u, 1));
  const targets = Array.isArray(target) ? target : [target, target];
  const measureFrom = performance.now() + warmupS * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const latencies: number[][] = [[], []];
  let failed = 0;
  // A service that keeps failing ends the window too (its p50 is then NaN: the check reads n/a).
  const enough = () =>
    performance.now() >= stopAt && (Math.min(...latencies.map((l) => l.length)) >= minCalls || failed >= minCalls);
  for (let i = 0; !enough(); i++) {
    const pair = Math.floor(i / 2);
    const side = (i + pair) % 2;
    const sideTarget = targets[side];
    const body = sideTarget.body[pair % sideTarget.body.length];
    const started = performance.now();
    let ok: boolean;
    try {
      ok = await cycle(clients[side], sideTarget, body);
    } catch {
      ok = false;
    }
    if (!ok) failed += 1;
    else if (started >= measureFrom) latencies[side].push(performance.now() - started);
  }
  for (const c of clients) c.close();
  for (const l of latencies) l.sort((a, b) => a - b);
  return { p50: latencies.map((l) => percentile(l, 50)), calls: latencies.map((l) => l.length), failed };
}
