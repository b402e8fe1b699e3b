/**
 * The hub under test, all private to the run: its own redis-server (AOF, fsync always) on a free
 * port, the API as a process of its own, and worker processes that are restarted when they die.
 * Also the fault primitives that act on them: signals, Redis restarts, CLIENT KILL by process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { REPO_ROOT } from '../../shared/config.js';
import { freePort, startWorker, type WorkerProcess } from '../helpers/hub.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';

export interface ApiProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startApiProcess(env: Record<string, string>, model: string): Promise<ApiProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  let log = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'api/main.ts')], {
    env: { ...process.env, ...env, PORT: String(port), API_METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`API exited during start-up (${child.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${url}/v1/models/${model}`, {
        headers: { authorization: `Bearer ${env.CHAOS_ADMIN_KEY}` },
      });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`API did not start:\n${log}`);
    await sleep(200);
  }
  return {
    url,
    child,
    output: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export type WorkerState = 'starting' | 'up' | 'stopped';

/** One worker slot: its process is restarted whenever it exits, until `shutdown`. */
export class SupervisedWorker {
  proc: WorkerProcess | null = null;
  state: WorkerState = 'starting';
  restarts = 0;
  private closing = false;
  private started: Promise<void> | null = null;

  constructor(
    readonly index: number,
    private readonly env: Record<string, string>,
    private readonly args: string[],
    private readonly onEvent: (what: string) => void,
  ) {}

  start(): Promise<void> {
    this.state = 'starting';
    this.started = (async () => {
      for (;;) {
        try {
          const proc = await startWorker({ ...this.env, WORKER_INDEX: String(this.index) }, this.args);
          this.proc = proc;
          this.state = 'up';
          proc.child.once('exit', (code, signal) => {
            this.proc = null;
            if (this.closing) return;
            this.restarts++;
            this.onEvent(`worker ${this.index} exited (${signal ?? code}); restarting`);
            void this.start();
          });
          return;
        } catch (err) {
          if (this.closing) return;
          this.onEvent(`worker ${this.index} failed to start: ${(err as Error).message.slice(0, 300)}`);
          await sleep(500);
        }
      }
    })();
    return this.started;
  }

  /** Resolves once the slot has a live, healthy process. */
  async ready(): Promise<void> {
    while (this.state === 'starting') await (this.started ?? sleep(100));
  }

  signal(sig: NodeJS.Signals): number | null {
    const pid = this.proc?.child.pid ?? null;
    if (pid !== null) this.proc!.child.kill(sig);
    if (sig === 'SIGSTOP' && pid !== null) this.state = 'stopped';
    if (sig === 'SIGCONT' && this.state === 'stopped') this.state = 'up';
    return pid;
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    if (this.state === 'stopped') this.proc?.child.kill('SIGCONT');
    await this.proc?.stop('SIGKILL');
  }
}

/** TCP connections from `pid` to Redis on `redisPort`: their local ports, from /proc (Linux). */
function redisConnectionPorts(pid: number, redisPort: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = Number.parseInt(f[1].split(':').pop() ?? '', 16);
      const remote = Number.parseInt(f[2].split(':').pop() ?? '', 16);
      if (remote === redisPort && inodes.has(f[9])) ports.add(local);
    }
  }
  return ports;
}

/** CLIENT KILL every connection `pid` holds to the run's Redis; returns how many were killed. */
export async function killClientsOf(admin: Redis, redisPort: number, pid: number): Promise<number> {
  const ports = redisConnectionPorts(pid, redisPort);
  if (ports.size === 0) return 0;
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  let killed = 0;
  for (const line of list.split('\n')) {
    const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
    const port = /(?:^|\s)addr=[^\s]*:(\d+)/.exec(line)?.[1];
    if (!id || !port || !ports.has(Number(port))) continue;
    try {
      killed += Number(await admin.call('CLIENT', 'KILL', 'ID', id));
    } catch {
      // gone already
    }
  }
  return killed;
}

export { startPrivateRedis, type PrivateRedis };
