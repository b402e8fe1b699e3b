/**
 * The fleet launcher: one worker process per listed device, restarted with backoff when it
 * dies, signals forwarded so SIGTERM drains every worker.
 *   node --enable-source-maps dist/worker/fleet.js --devices cuda:0,cuda:1 --models all
 *   node --enable-source-maps dist/worker/fleet.js --devices "cpu x2"
 * Worker i gets MODELHUB_WORKER_INDEX=i and metrics on MODELHUB_METRICS_PORT + i (default 9464 + i).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { loadConfig, warnDeprecatedSettings } from '../shared/config.js';
import { nodeEntryArgs } from '../shared/entry-point.js';
import { createLogger } from '../shared/logger.js';
import { fleetOptions } from '../shared/options/worker.js';
import { parseDevice } from './backend/device.js';

/** "cuda:0,cuda:1" | "cpu x2" | "cpu,cuda:0 x2" → one device string per worker. */
export function parseDeviceList(spec: string): string[] {
  const devices: string[] = [];
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\S+?)(?:\s*[x×*]\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad device entry "${part}"`);
    parseDevice(m[1]); // validates
    const n = m[2] ? Number(m[2]) : 1;
    if (n < 1 || n > 64) throw new Error(`bad count in "${part}"`);
    for (let i = 0; i < n; i++) devices.push(m[1]);
  }
  if (devices.length === 0) throw new Error('no devices given');
  return devices;
}

export interface RestartPolicy {
  /** First restart delay, ms; doubles per consecutive crash up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A worker that ran this long before dying starts again from baseDelayMs. */
  stableAfterMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = { baseDelayMs: 1000, maxDelayMs: 30_000, stableAfterMs: 60_000 };

export function restartDelay(policy: RestartPolicy, consecutiveCrashes: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, consecutiveCrashes - 1));
}

/**
 * Asks a worker to stop with `signal`, and SIGKILLs it if it is still alive `killAfterMs` later:
 * a worker past its own shutdown timeout may be stuck in native code (busy decoder threads) and
 * never get to exit by itself. Resolves when it has exited.
 */
export function stopWorker(child: ChildProcess, signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  child.kill(signal);
  return exited.finally(() => clearTimeout(timer));
}

/** Time a worker gets past its own SHUTDOWN_TIMEOUT_MS before the launcher kills it. */
export const KILL_GRACE_MS = 5000;

interface Slot {
  index: number;
  device: string;
  child: ChildProcess | null;
  startedAt: number;
  crashes: number;
  timer: NodeJS.Timeout | null;
}

async function main(): Promise<void> {
  const options = fleetOptions(loadConfig());
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: options.devices },
      models: { type: 'string', default: options.models },
    },
  });
  const log = createLogger('fleet', options.logging);
  warnDeprecatedSettings(log);
  const killAfterMs = options.shutdownTimeoutMs + KILL_GRACE_MS;
  const devices = parseDeviceList(values.devices!);
  const policy: RestartPolicy = {
    ...DEFAULT_RESTART,
    baseDelayMs: options.restartBaseMs ?? DEFAULT_RESTART.baseDelayMs,
  };
  const slots: Slot[] = devices.map((device, index) => ({
    index,
    device,
    child: null,
    startedAt: 0,
    crashes: 0,
    timer: null,
  }));
  let stopping = false;

  const start = (slot: Slot) => {
    slot.timer = null;
    slot.startedAt = Date.now();
    const child = spawn(
      process.execPath,
      [...nodeEntryArgs(import.meta.url, './main'), '--device', slot.device, '--models', values.models!],
      {
        stdio: 'inherit',
        // libuv's pool runs the worker's image decoding: as many threads as cores, not libuv's 4.
        env: {
          UV_THREADPOOL_SIZE: String(os.availableParallelism()),
          ...process.env,
          // The earlier names, read above, would only draw a warning in each worker.
          WORKER_INDEX: undefined,
          METRICS_PORT: undefined,
          MODELHUB_WORKER_INDEX: String(slot.index),
          MODELHUB_METRICS_PORT: String(options.metricsBasePort + slot.index),
        },
      },
    );
    slot.child = child;
    log.info({ worker: slot.index, device: slot.device, pid: child.pid }, 'worker started');
    child.on('exit', (code, signal) => {
      slot.child = null;
      if (stopping) return;
      slot.crashes = Date.now() - slot.startedAt > policy.stableAfterMs ? 1 : slot.crashes + 1;
      const delay = restartDelay(policy, slot.crashes);
      log.warn(
        { worker: slot.index, device: slot.device, code, signal, restartInMs: delay },
        'worker died; restarting',
      );
      slot.timer = setTimeout(() => start(slot), delay);
    });
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the fleet: draining every worker');
    for (const s of slots) if (s.timer) clearTimeout(s.timer);
    const waitAll = slots.map((s) => (s.child ? stopWorker(s.child, signal, killAfterMs) : null));
    void Promise.all(waitAll).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (const s of slots) start(s);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    createLogger('fleet').fatal({ err }, `fleet failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
