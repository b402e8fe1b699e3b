/**
 * A worker's graceful stop: no new jobs, finish the inference batch in flight and store its results, then
 * let go of sessions, registry entry, queues and connections, in that order. Runs once however
 * often it is asked; past `timeoutMs` it gives up waiting (`onTimeout`): the jobs left unfinished
 * are recovered by other workers once their locks expire.
 */
import type { Logger } from '../shared/logger.js';

export interface ShutdownStep {
  /** What the step lets go of (logged when it fails). */
  what: string;
  run: () => Promise<unknown>;
  /** A step that may fail without stopping the ones after it (closing what is already gone). */
  mayFail?: boolean;
}

export interface ShutdownOptions {
  log: Logger;
  /** Longest graceful shutdown, ms (SHUTDOWN_TIMEOUT_MS); then `onTimeout` runs. */
  timeoutMs: number;
  /** Past `timeoutMs`: the entry point exits 1; a worker run as a library logs and keeps waiting. */
  onTimeout: () => void;
}

export class WorkerShutdown {
  private done: Promise<void> | null = null;

  constructor(
    private readonly steps: ShutdownStep[],
    private readonly options: ShutdownOptions,
  ) {}

  /** True once asked to stop. */
  get started(): boolean {
    return this.done !== null;
  }

  /** Runs the steps once; later calls get the same promise. */
  run(reason: string): Promise<void> {
    this.done ??= this.stop(reason);
    return this.done;
  }

  private async stop(reason: string): Promise<void> {
    const { log, timeoutMs, onTimeout } = this.options;
    log.info({ reason }, 'shutting down: no new jobs, finishing the inference batch in flight');
    const force = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown took too long; exiting (unfinished jobs are recovered by other workers)');
      onTimeout();
    }, timeoutMs);
    force.unref();
    try {
      for (const step of this.steps) {
        if (step.mayFail) await step.run().catch(() => undefined);
        else await step.run();
      }
    } finally {
      clearTimeout(force);
    }
    log.info('worker stopped');
  }
}
