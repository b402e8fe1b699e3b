/**
 * Where queue entries meet a model's batcher. A queue entry carries N items: an interactive job
 * is the N = 1 case, a batch chunk carries up to BATCH_CHUNK_SIZE. Every item goes through
 * `runner.run` on its own, so the batcher forms inference batches across entries and a bad item fails
 * alone.
 *
 * Fairness: interactive items go straight in; bulk items pass a gate that keeps at most
 * `bulkInFlight` of them inside the runner (preprocessing, batcher, session) at once. The batcher
 * is first come, first served, so an interactive job arriving during a bulk run waits behind at
 * most `bulkInFlight` bulk items, not behind whole chunks. Images larger than
 * `heavy.minPixels` (by their header) also pass a gate shared by every model of the worker, so a
 * few very large images (a 9-megapixel segmentation costs hundreds of ms of decode and
 * postprocessing) cannot take all of the worker's cores from everyone else's small jobs.
 */
import { SpecError } from '../shared/errors.js';
import { AdmissionGate } from './admission-gate.js';
import { imagePixelsOf } from './image-weight.js';
import type { ModelRunner, RunResult } from './model-runner.js';

export type Lane = 'interactive' | 'bulk';

/** One item's end: its result or its error, and when it ended (epoch ms). */
export type ItemSettled = { ok: true; value: RunResult; at: number } | { ok: false; error: unknown; at: number };

export interface ItemIntakeOptions {
  /** Most bulk items inside the runner at once (at least 1). */
  bulkInFlight: number;
  /** Images over `minPixels` wait for a place in `gate` (shared by the worker's models). Default: no gate. */
  heavy?: { gate: AdmissionGate; minPixels: number };
}

export class ItemIntake {
  private readonly bulkGate: AdmissionGate;

  constructor(
    readonly runner: ModelRunner,
    private readonly options: ItemIntakeOptions,
  ) {
    this.bulkGate = new AdmissionGate(options.bulkInFlight);
  }

  /** Runs an entry's items; never rejects: one settled outcome per item, in input order. */
  run(inputs: Record<string, unknown>[], lane: Lane, deadlineAt?: number): Promise<ItemSettled[]> {
    return Promise.all(
      inputs.map((input) =>
        this.runItem(input, lane, deadlineAt).then(
          (value): ItemSettled => ({ ok: true, value, at: Date.now() }),
          (error: unknown): ItemSettled => ({ ok: false, error, at: Date.now() }),
        ),
      ),
    );
  }

  /**
   * An interactive job: the N = 1 entry; `startWhen` (its run claim) is awaited after its
   * preprocessing and before its inference batch. Rejects with the item's error, or at once when `signal`
   * aborts (its run lost its lock: another worker has the job); the item itself still runs to its
   * end in its inference batch, so its batch-mates are untouched, and its answer is dropped.
   */
  async runOne(
    input: Record<string, unknown>,
    deadlineAt?: number,
    signal?: AbortSignal,
    startWhen?: Promise<unknown>,
  ): Promise<RunResult> {
    if (signal?.aborted) throw new RunAbandonedError(signal.reason);
    const run = this.runItem(input, 'interactive', deadlineAt, startWhen).then(
      (value): ItemSettled => ({ ok: true, value, at: Date.now() }),
      (error: unknown): ItemSettled => ({ ok: false, error, at: Date.now() }),
    );
    const settled = signal ? await untilAborted(run, signal) : await run;
    if (!settled.ok) throw settled.error;
    return settled.value;
  }

  private async runItem(
    input: Record<string, unknown>,
    lane: Lane,
    deadlineAt?: number,
    startWhen?: Promise<unknown>,
  ): Promise<RunResult> {
    const gates: AdmissionGate[] = lane === 'bulk' ? [this.bulkGate] : [];
    const heavy = this.options.heavy;
    if (heavy && (imagePixelsOf(input) ?? 0) > heavy.minPixels) gates.push(heavy.gate);
    // Always in this order (a model's bulk gate, then the worker's heavy gate): no waiting cycle.
    for (const gate of gates) await gate.enter();
    try {
      return await withDeadline(() => this.runner.run(input, startWhen), deadlineAt);
    } finally {
      for (const gate of gates) gate.leave();
    }
  }
}

/** An item's run was abandoned by its caller (the job's lock was lost). */
export class RunAbandonedError extends Error {
  override name = 'RunAbandonedError';
  constructor(reason: unknown) {
    super(`run abandoned: ${String(reason)}`);
  }
}

export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort = () => undefined as void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new RunAbandonedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** Runs `work` unless the deadline has passed; fails it if the deadline passes while it runs. */
function withDeadline<T>(work: () => Promise<T>, deadlineAt: number | undefined): Promise<T> {
  if (deadlineAt === undefined) return work();
  const left = deadlineAt - Date.now();
  if (left <= 0)
    return Promise.reject(new SpecError('DEADLINE_EXCEEDED', 'the deadline (timeout_s) passed before this could run'));
  let timer: NodeJS.Timeout;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SpecError('DEADLINE_EXCEEDED', 'the deadline (timeout_s) passed while it ran')),
      left,
    );
  });
  return Promise.race([work(), expired]).finally(() => clearTimeout(timer));
}
