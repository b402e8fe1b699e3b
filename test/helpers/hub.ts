/**
 * Starts a private hub for one test file: a unique Redis key prefix, the API in-process on a
 * free port, and workers: in-process by default (worker/worker.ts, as a library), or real worker
 * processes for the tests that kill, stop or measure one (`workerProcesses: true`). `stop()`
 * ends the workers and deletes the prefix's keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { REPO_ROOT, loadConfig, type Config } from '../../shared/config.js';
import { startApi, type RunningApi } from '../../api/server.js';
import type { JobServiceHooks } from '../../api/job-service.js';
import { startWorker as startWorkerInProcess } from '../../worker/worker.js';
import { workerOptions } from '../../shared/options/worker.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function testPrefix(name: string): string {
  return `mhtest-${name}-${randomUUID().slice(0, 8)}`;
}

export async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A worker a hub started, in this process or in its own. */
export interface HubWorker {
  metricsUrl: string;
  /** What it logged (LOG_LEVEL, by default warn). */
  output: () => string;
  /**
   * Ends it: a process gets `signal` and resolves to its exit code; an in-process worker stops
   * gracefully whatever the signal (it cannot be killed: use `workerProcesses: true` for that)
   * and resolves to 0.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface WorkerProcess extends HubWorker {
  child: ChildProcess;
}

/**
 * A worker in this process (worker/worker.ts), set up as worker/main.ts sets one up from `env`
 * and `args`, with its log kept for `output()`.
 */
export async function startInProcessWorker(env: Record<string, string>, args: string[]): Promise<HubWorker> {
  const port = await freePort();
  const config = loadConfig({
    ...process.env,
    ...env,
    MODELHUB_METRICS_PORT: String(port),
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    MODELHUB_LOG_FORMAT: 'json',
  });
  const { values } = parseArgs({ args, options: { device: { type: 'string' }, models: { type: 'string' } } });
  let log = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      log += chunk;
      done();
    },
  });
  const options = workerOptions(config);
  const worker = await startWorkerInProcess({
    ...options,
    device: values.device ?? options.device,
    models: values.models ?? options.models,
    log: pino({ name: 'worker', level: config.LOG_LEVEL }, sink),
  });
  return {
    metricsUrl: worker.metricsUrl,
    output: () => log,
    async stop() {
      await worker.close('test stop');
      return 0;
    },
  };
}

export async function startWorker(env: Record<string, string>, args: string[]): Promise<WorkerProcess> {
  const port = await freePort();
  let log = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'worker/main.ts'), ...args], {
    env: { ...process.env, ...env, MODELHUB_METRICS_PORT: String(port), LOG_LEVEL: env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const metricsUrl = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited during start-up (${child.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${metricsUrl}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`worker did not become healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    metricsUrl,
    output: () => log,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs `submit` with the worker process held (SIGSTOP), then lets it go. The batcher runs whatever
 * is queued as soon as its backend is idle, so on a loaded host requests that arrive one by one
 * may each run alone; held, the worker finds them all waiting and must batch them.
 */
export async function whileWorkerHeld<T>(worker: WorkerProcess, submit: () => Promise<T>): Promise<T> {
  worker.child.kill('SIGSTOP');
  try {
    return await submit();
  } finally {
    worker.child.kill('SIGCONT');
  }
}

export interface Hub<W extends HubWorker = HubWorker> {
  prefix: string;
  config: Config;
  api: RunningApi;
  url: string;
  workers: W[];
  env: Record<string, string>;
  addWorker(args?: string[]): Promise<W>;
  stop(): Promise<void>;
}

export interface HubOptions {
  name: string;
  /** Models each worker serves (comma list or "all"). */
  models?: string;
  workers?: number;
  env?: Record<string, string>;
  /** Points where the test forces an interleaving in the in-process API. */
  jobHooks?: JobServiceHooks;
  /**
   * Workers as real processes (`node --import tsx worker/main.ts`), for tests that kill, hold
   * (SIGSTOP) or measure one. Otherwise they run in this process: faster to start.
   */
  workerProcesses?: boolean;
}

export async function startHub(options: HubOptions & { workerProcesses: true }): Promise<Hub<WorkerProcess>>;
export async function startHub(options: HubOptions): Promise<Hub>;
export async function startHub(options: HubOptions): Promise<Hub> {
  const prefix = testPrefix(options.name);
  const env: Record<string, string> = { REDIS_URL, MODELHUB_PREFIX: prefix, ...(options.env ?? {}) };
  const config = loadConfig({
    ...process.env,
    ...env,
    PORT: '0',
    MODELHUB_API_METRICS_PORT: '0',
    MODELHUB_API_METRICS_REFRESH_MS: env.MODELHUB_API_METRICS_REFRESH_MS ?? env.API_METRICS_REFRESH_MS ?? '1000',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
  });
  const api = await startApi(config, { jobHooks: options.jobHooks });
  const workerArgs = ['--device', 'cpu', '--models', options.models ?? 'all'];
  const hub: Hub = {
    prefix,
    config,
    api,
    url: api.url,
    workers: [],
    env,
    async addWorker(args = workerArgs) {
      const w = options.workerProcesses ? await startWorker(env, args) : await startInProcessWorker(env, args);
      hub.workers.push(w);
      return w;
    },
    async stop() {
      await Promise.all(hub.workers.map((w) => w.stop('SIGKILL')));
      await api.close();
      await deletePrefix(prefix);
    },
  };
  try {
    for (let i = 0; i < (options.workers ?? 1); i++) await hub.addWorker();
  } catch (err) {
    await hub.stop();
    throw err;
  }
  return hub;
}

/** Reads one counter/gauge/histogram-sum series from a Prometheus text page. */
export function metricValue(page: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of page.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => lbl[k] === v)) {
      total += Number(m[4]);
      found = true;
    }
  }
  if (!found) throw new Error(`metric ${name}${JSON.stringify(labels)} not found`);
  return total;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}

/** Polls GET /v1/jobs/:id until the job leaves queued/running. */
export async function pollJob(baseUrl: string, id: string, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJson(`${baseUrl}/v1/jobs/${id}`);
    if (body.status !== 'queued' && body.status !== 'running') return body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
