/**
 * A small pool of worker threads for CPU-heavy steps (large JSON bodies at the API, large masks
 * at the worker), so one big request does not hold the event loop that every other request,
 * lock renewal and health check needs. Piscina does the pooling; threads start on first use and
 * stop when idle, so a process that never sees a large input never starts one.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { fileURLToPath } from 'node:url';

export interface OffloopPoolOptions {
  /** URL of the module whose exported functions run in the threads (its .ts source or compiled .js). */
  module: URL;
  /** Most threads at once. Default: half the cores, at least 1, at most 4. */
  maxThreads?: number;
  /** A thread with nothing to do exits after this long. Default 30 s. */
  idleTimeoutMs?: number;
}

export class OffloopPool {
  private pool: Piscina | null = null;
  /** Tasks handed to a thread so far (tests check that a path was taken). */
  tasksRun = 0;

  constructor(private readonly options: OffloopPoolOptions) {}

  /** Runs `fn(arg)` of the task module in a thread; `transfer` moves those buffers instead of copying them. */
  run<R>(fn: string, arg: unknown, transfer: ArrayBuffer[] = []): Promise<R> {
    this.pool ??= new Piscina({
      filename: fileURLToPath(new URL('./thread-host.mjs', import.meta.url)),
      workerData: { module: this.options.module.href },
      minThreads: 0,
      maxThreads: this.options.maxThreads ?? Math.min(4, Math.max(1, Math.floor(availableParallelism() / 2))),
      idleTimeout: this.options.idleTimeoutMs ?? 30_000,
    });
    this.tasksRun++;
    return this.pool.run({ fn, arg }, { transferList: transfer }) as Promise<R>;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.destroy();
  }
}

/** Wraps a task's result so the listed buffers are moved to the caller rather than copied. */
export function moving<T extends object>(value: T, transfer: ArrayBuffer[]): T {
  return Piscina.move({ [Piscina.transferableSymbol]: transfer, [Piscina.valueSymbol]: value } as never) as T;
}

/** The module beside `from` named `name`, with the caller's own extension (.ts in sources, .js in dist/). */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/** An ArrayBuffer holding exactly `view`'s bytes: its own when the view spans it, else a copy. */
export function ownBuffer(view: Uint8Array): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer)
    return view.buffer;
  return new Uint8Array(view).buffer; // a copy (Buffer.slice would share the memory)
}
