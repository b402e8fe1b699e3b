/**
 * A model's predict lane: coalesced predict entries (shared/predict/entry.ts), each carrying the
 * items of concurrent `predict` calls. The items go through the ItemIntake like an interactive
 * job's single item, so the batcher forms inference batches across entries and a bad item fails alone.
 *
 * As for jobs (queue-consumer.ts), only the run whose finish BullMQ recorded speaks: the items'
 * outcome metrics and their accounting (each item's record finished in one script,
 * finish-entry.lua) are emitted from the worker's `completed` and `failed` events, which fire only
 * after `moveToFinished` succeeded. A run that lost its lock is told through its abort signal and
 * ends without a word. A worker that dies holding an entry leaves it to BullMQ's stalled-job
 * recovery: another worker runs it again (its claim moves no record twice), so every waiting call
 * is answered once, by that run. The items are claimed in one script for the entry
 * (claim-entry-for-run.lua), not one per item, and only those counted as waiting.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { SpecError, asSpecError, isRetriable } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { JobAccounting } from '../shared/jobs/accounting.js';
import { sendFinishNotice } from '../shared/jobs/finish-notices.js';
import {
  ENTRY_INPUTS_APART_VERSION,
  ENTRY_RESULT_VERSION,
  itemResultBytes,
  itemsToClaim,
  readEntryData,
  type EntryData,
  type EntryInputs,
  type EntryItemResult,
  type EntryResult,
} from '../shared/predict/entry.js';
import { entryInputsKey, predictQueueName } from '../shared/redis/keys.js';
import { finishedEntryData } from '../shared/redis/bullmq-internals.js';
import { deviceName } from './backend/device.js';
import { untilAborted, type ItemIntake, type ItemSettled } from './item-intake.js';
import { abandonOnLockLoss, laneWorkerOptions } from './lane-worker.js';
import { ProbingWorker } from './probing-worker.js';
import type { WorkerMetrics } from './metrics.js';
import type { ConsumerOptions } from './queue-consumer.js';
import {
  ATTR,
  SpanKind,
  activeContext,
  annotateActiveSpan,
  contextOfTraceparent,
  inSpan,
  spanContextOf,
} from '../shared/tracing.js';

export interface EntryConsumerOptions extends Omit<ConsumerOptions, 'webhooks'> {
  /**
   * Entries worked on at once. An entry holds 1 to max_batch_size calls, and the batcher can only
   * form inference batches from the items it has: as many entries as the job queue takes jobs
   * (2 × max_batch_size), so coalesced calls never starve the batcher of items.
   * @defaultValue 2 × the model's max_batch_size
   */
  entriesAtOnce?: number;
}

export class EntryConsumer {
  readonly worker: Worker<EntryData, EntryResult>;
  private readonly model: string;
  private readonly accounting: JobAccounting;

  constructor(
    private readonly intake: ItemIntake,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly options: EntryConsumerOptions,
  ) {
    const model = (this.model = intake.runner.entry.manifest.name);
    this.accounting = new JobAccounting(options.connection, options.prefix, {
      ttlS: options.claimTtlS,
      retention: options.retention,
    });
    this.worker = new ProbingWorker<EntryData, EntryResult>(
      predictQueueName(model),
      (job, _token, signal) => this.process(job, signal),
      laneWorkerOptions(options, options.entriesAtOnce ?? intake.runner.entry.manifest.batching.max_batch_size * 2),
    );
    this.worker.on('error', (err) => this.log.error({ err, model }, 'predict lane consumer error'));
    abandonOnLockLoss(this.worker, model, 'entries', log, metrics);
    this.worker.on('completed', (job) => {
      const result = job.returnvalue;
      // BullMQ recorded the finish: the API instance whose calls these are hears of it first.
      if (job.data.reply_to)
        void sendFinishNotice(options.connection, options.prefix, job.data.reply_to, {
          id: job.id!,
          event: 'completed',
          returnvalue: result,
        });
      for (const it of result.items) this.metrics.jobs.inc({ model, outcome: itemOutcome(it) });
      this.metrics.jobDurationSeconds.observe({ model }, (Date.now() - job.timestamp) / 1000);
      void this.finished(job, result);
    });
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      this.metrics.jobs.inc({ model, outcome: final ? 'failed' : 'retried' }, job.data.items.length);
      if (final && job.data.reply_to)
        void sendFinishNotice(options.connection, options.prefix, job.data.reply_to, {
          id: job.id!,
          event: 'failed',
          failedReason: job.failedReason || err.message,
        });
      if (final) void this.finished(job, null);
    });
  }

  start(): void {
    void this.worker.run();
  }

  async close(): Promise<void> {
    await this.worker.close();
  }

  private async process(job: Job<EntryData, EntryResult>, signal?: AbortSignal): Promise<EntryResult> {
    const model = this.model;
    const startedAt = Date.now();
    this.metrics.queueWaitSeconds.observe({ model }, Math.max(0, startedAt - job.timestamp) / 1000);
    annotateActiveSpan({
      [ATTR.messagingSystem]: 'bullmq',
      [ATTR.messagingDestination]: predictQueueName(model),
      [ATTR.messagingOperationType]: 'process',
      [ATTR.messagingMessageId]: job.id!,
      [ATTR.model]: model,
      'modelhub.entry_items': job.data.items.length,
      'modelhub.attempt': job.attemptsMade + 1,
    });
    let data: EntryData;
    try {
      data = readEntryData(job.data);
    } catch (err) {
      // A newer release's entry: retried (another worker may read it), never run half-understood.
      throw new Error(new SpecError('INTERNAL', (err as Error).message).toReason(), { cause: err });
    }
    // The items counted as waiting leave their tenants' waiting counts, in one script (a retry
    // moves nothing twice); an entry with none counted skips it. A v2 entry's inputs are read meanwhile.
    const [, inputs] = await Promise.all([
      this.accounting.claimEntryForRun(
        model,
        itemsToClaim(data).map((it) => it.id),
      ),
      this.inputsOf(data, job.id!),
    ]);
    // Tracing on: each item runs in a span of its own call's trace, linked to the entry's span.
    const entrySpan = spanContextOf(activeContext());
    const runs = Promise.all(
      data.items.map((it): Promise<ItemSettled> =>
        inSpan(
          'predict item',
          {
            parent: contextOfTraceparent(it.traceparent),
            kind: SpanKind.CONSUMER,
            links: entrySpan ? [{ context: entrySpan }] : [],
            attributes: { [ATTR.jobId]: it.id, [ATTR.model]: model, 'modelhub.entry_id': job.id! },
          },
          async () => {
            if (it.deadline_at !== undefined && startedAt > it.deadline_at)
              return unrun(new SpecError('DEADLINE_EXCEEDED', "the call's deadline passed before it could run"));
            const input = inputs ? inputs[it.id] : it.input;
            // Only when the entry waited longer than its inputs' TTL (retention plus an hour).
            if (!input)
              return unrun(
                new SpecError('DEADLINE_EXCEEDED', "the call's input expired from Redis before it could run"),
              );
            const [settled] = await this.intake.run([input], 'interactive', it.deadline_at);
            return settled;
          },
        ),
      ),
    );
    const settled = signal ? await untilAborted(runs, signal) : await runs;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    // A failure that is not the input's retries the entry (its other items run again; nothing was said yet).
    const retriable = settled.find((s) => !s.ok && isRetriable(s.error));
    if (retriable && !lastAttempt) {
      const reason = asSpecError((retriable as { error: unknown }).error).toReason();
      this.log.warn({ entry: job.id, model, err: reason }, 'predict entry item failed; retrying the entry');
      throw new Error(reason);
    }
    const items = settled.map((s, k): EntryItemResult =>
      s.ok
        ? {
            id: data.items[k].id,
            output: s.value.output,
            metrics: {
              inference_ms: round(s.value.inferenceMs),
              preprocess_ms: round(s.value.preprocessMs),
              batch_size: s.value.batchSize,
            },
          }
        : { id: data.items[k].id, error: asSpecError(s.error).toReason() },
    );
    const runner = this.intake.runner;
    return {
      v: ENTRY_RESULT_VERSION,
      items,
      metrics: {
        entry_items: items.length,
        device: deviceName(runner.device),
        worker: this.options.workerId,
        weights_sha256: runner.weights.sha256,
        weights: runner.weights.verification,
      },
    };
  }

  /**
   * A v2 entry's inputs (item id → input; empty when the key is gone), or null for a v1 entry,
   * whose items carry their own.
   */
  private async inputsOf(data: EntryData, entryId: string): Promise<EntryInputs | null> {
    if (data.v < ENTRY_INPUTS_APART_VERSION) return null;
    const json = await this.options.connection.get(entryInputsKey(this.options.prefix, this.model, entryId));
    return json ? (JSON.parse(json) as EntryInputs) : {};
  }

  /** A finished entry (BullMQ recorded it): each item's accounting, in one script. */
  private async finished(job: Job<EntryData, EntryResult>, result: EntryResult | null): Promise<void> {
    try {
      const items = job.data.items.map((it, k) => ({
        id: it.id,
        tenant: it.tenant,
        resultBytes: result?.items[k]?.id === it.id ? itemResultBytes(result.items[k]) : 0,
      }));
      const dataWithoutInputs = finishedEntryData(job.data);
      await this.accounting.finishEntry(this.model, { id: job.id!, items, dataWithoutInputs });
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message, entry: job.id },
        'could not record a finished predict entry; the reconciler will',
      );
    }
  }
}

/** An item that ends without running, with `error`, now. */
function unrun(error: SpecError): ItemSettled {
  return { ok: false, error, at: Date.now() };
}

/** An item's outcome as the jobs metric counts it (no cancel can reach a coalesced call). */
function itemOutcome(it: EntryItemResult): 'succeeded' | 'failed' {
  return 'error' in it ? 'failed' : 'succeeded';
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
