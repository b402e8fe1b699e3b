/**
 * The benchmark's process tree: a private redis-server (so INFO commandstats counts only this
 * run), the hub's API and worker processes (or the bare baseline's), each a child of the bench,
 * and CPU time per process and per thread read from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../../shared/config.js';
import { freePort } from '../../test/helpers/hub.js';

export { freePort };

export interface Service {
  name: string;
  child: ChildProcess;
  pid: number;
  log: () => string;
  stop(): Promise<void>;
}

const live = new Set<Service>();

/** Starts a child; `ready` polls until it answers (an HTTP URL or a custom check). */
export async function startService(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: (log: () => string) => Promise<boolean>,
  options: { cpus?: string } = {},
): Promise<Service> {
  let log = '';
  const [cmd, argv] = options.cpus ? ['taskset', ['-c', options.cpus, command, ...args]] : [command, args];
  const child = spawn(cmd, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (log = (log + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (log = (log + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const service: Service = {
    name,
    child,
    pid: child.pid!,
    log: () => log,
    async stop() {
      live.delete(service);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    },
  };
  live.add(service);
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited during start-up (${child.exitCode}):\n${log}`);
    if (await ready(() => log).catch(() => false)) return service;
    if (Date.now() > deadline) {
      await service.stop();
      throw new Error(`${name} did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Stops every service still running (on exit or error), newest first. */
export async function stopAll(): Promise<void> {
  for (const s of [...live].reverse()) await s.stop();
}

export const tsNode = (script: string, nodeArgs: string[] = []) => ({
  command: process.execPath,
  args: [...nodeArgs, '--import', 'tsx', path.join(REPO_ROOT, script)],
});

/**
 * A hub entry point (`api/main.ts`, `worker/main.ts`, `bench/bare/server.ts`…) as production
 * runs it: compiled JavaScript under dist/ (buildCompiled first). With `source`, the TypeScript
 * through tsx, as before: no build, but it cost the hub 4–9 % of its throughput at c=32
 * (docs/performance.md, "4 December, late night").
 */
export const hubNode = (script: string, nodeArgs: string[] = [], source = false) =>
  source
    ? tsNode(script, nodeArgs)
    : { command: process.execPath, args: [...nodeArgs, path.join(REPO_ROOT, 'dist', script.replace(/\.ts$/, '.js'))] };

/**
 * `npm run build` (dist/), plus the bare baseline's scripts transpiled beside it (dist/bench/bare),
 * so the baseline runs compiled as the hub does.
 */
export function buildCompiled(): void {
  const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'deploy', 'build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('npm run build failed');
  const bare = path.join(REPO_ROOT, 'bench', 'bare');
  const out = path.join(REPO_ROOT, 'dist', 'bench', 'bare');
  fs.mkdirSync(out, { recursive: true });
  for (const file of fs.readdirSync(bare).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(fs.readFileSync(path.join(bare, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    fs.writeFileSync(path.join(out, file.replace(/\.ts$/, '.js')), outputText);
  }
}

export const httpReady = (url: string) => async () => (await fetch(url)).ok;
export const logReady = (text: string) => async (log: () => string) => log().includes(text);

const TICK_MS = 1000 / 100; // USER_HZ: Linux reports CPU time in 1/100 s

/** utime + stime of a process or one of its threads, ms; null when it is gone. */
export function cpuMs(pid: number, tid?: number): number | null {
  try {
    const stat = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return null;
  }
}

export interface ThreadInfo {
  tid: number;
  comm: string;
}

export function threadsOf(pid: number): ThreadInfo[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .map((t) => ({ tid: Number(t), comm: fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() }));
  } catch {
    return [];
  }
}

/** A labelled group of threads of one process whose CPU time is read together. */
export interface CpuProbe {
  label: string;
  read(): number;
}

export function processProbe(label: string, pid: number): CpuProbe {
  return { label, read: () => cpuMs(pid) ?? 0 };
}

/**
 * A worker process split by thread: the event loop (main), the onnxruntime session threads
 * (the hosting thread plus onnxruntime's pool, ids from the worker's /healthz), libvips (sharp)
 * and the rest (V8 GC and compiler threads, libuv's pool).
 */
export function workerProbes(prefix: string, pid: number, sessionTids: number[]): CpuProbe[] {
  const session = new Set(sessionTids);
  const sum = (pick: (t: ThreadInfo) => boolean) => () =>
    threadsOf(pid)
      .filter(pick)
      .reduce((a, t) => a + (cpuMs(pid, t.tid) ?? 0), 0);
  return [
    { label: `${prefix} main thread`, read: () => cpuMs(pid, pid) ?? 0 },
    { label: `${prefix} session threads`, read: sum((t) => session.has(t.tid)) },
    { label: `${prefix} sharp (libvips)`, read: sum((t) => t.comm.startsWith('libvips') || t.comm.startsWith('vips')) },
    {
      label: `${prefix} other threads`,
      read: sum(
        (t) => t.tid !== pid && !session.has(t.tid) && !t.comm.startsWith('libvips') && !t.comm.startsWith('vips'),
      ),
    },
  ];
}

/** The bench process itself (its HTTP clients), from process.cpuUsage. */
export function selfProbe(label: string): CpuProbe {
  return {
    label,
    read: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
  };
}

export function snapshot(probes: CpuProbe[]): Map<string, number> {
  return new Map(probes.map((p) => [p.label, p.read()]));
}

/** CPU ms spent per label between two snapshots. */
export function cpuBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
}
