/**
 * A model's bulk lane: batch chunks (one queue entry, up to BATCH_CHUNK_SIZE items) and batch
 * completions. A chunk's items are fed to the model's batcher through the ItemIntake gate; its
 * result lines are stored in one script call, exactly once, whichever attempt gets there first.
 * A few chunks at a time per worker (BATCH_WORKER_CHUNKS): the lane's own BullMQ worker, so
 * bulk work never takes the slots interactive jobs are fetched into.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import {
  itemRequestId,
  readBulkJobData,
  type BatchData,
  type BulkJobData,
  type ChunkData,
  type StagedItem,
} from '../shared/batches/payload.js';
import { batchView, unranLines, type ResultLine } from '../shared/batches/view.js';
import { finishChunk, startChunk } from '../shared/redis/batch-chunks.js';
import { batchIndexKey, batchKeys, bulkQueueName } from '../shared/redis/keys.js';
import { SpecError, asSpecError, isRetriable } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { enqueueBatchCompleted, type WebhookJobData } from '../shared/webhooks/events.js';
import type { ItemIntake, ItemSettled } from './item-intake.js';
import type { WorkerMetrics } from './metrics.js';
import { bullTelemetry } from '../shared/tracing.js';

export interface BatchConsumerOptions {
  prefix: string;
  connection: RedisClient;
  workerId: string;
  webhooks: Queue<WebhookJobData>;
  /** Chunks worked on at once. */
  chunksAtOnce: number;
  /** TTL of a running batch's keys, s; a completed batch's keys are kept `retentionS`. */
  liveTtlS: number;
  retentionS: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  maxStalledCount?: number;
}

export class BatchConsumer {
  readonly worker: Worker<BulkJobData>;
  private readonly model: string;

  constructor(
    private readonly intake: ItemIntake,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly options: BatchConsumerOptions,
  ) {
    const model = (this.model = intake.runner.entry.manifest.name);
    this.worker = new Worker<BulkJobData>(bulkQueueName(model), (job) => this.process(job), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: Math.max(1, options.chunksAtOnce),
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 15_000,
      maxStalledCount: options.maxStalledCount ?? 2,
      autorun: false,
      name: options.workerId,
      // Tracing on: a chunk's items run in its `process` span, which continues the upload's trace.
      telemetry: bullTelemetry(),
    });
    this.worker.on('error', (err) => this.log.error({ err, model }, 'batch consumer error'));
  }

  start(): void {
    void this.worker.run();
  }

  async close(): Promise<void> {
    await this.worker.close();
  }

  private process(job: Job<BulkJobData>): Promise<unknown> {
    const data = readBulkJobData(job.data);
    return data.kind === 'batch' ? this.completeBatch(data) : this.runChunk(job as Job<ChunkData>);
  }

  private async runChunk(job: Job<ChunkData>): Promise<{ succeeded: number; failed: number; canceled: number }> {
    const d = job.data;
    const { prefix, connection: redis } = this.options;
    const keys = batchKeys(prefix, d.batch);
    const ref = { model: d.model, batch: d.batch, chunk: d.chunk, count: d.count, chunks: d.chunks };
    const state = await startChunk(redis, prefix, ref, this.options.liveTtlS);
    let lines: ResultLine[];
    if (state === 'canceled') {
      lines = unranLines(
        d.batch,
        d.first,
        d.count,
        'canceled',
        new SpecError('CANCELED', 'the batch was canceled before this item ran'),
      );
    } else {
      const raw = await redis.get(keys.input(d.chunk));
      lines = raw
        ? await this.runItems(job, JSON.parse(raw) as StagedItem[])
        : unranLines(
            d.batch,
            d.first,
            d.count,
            'failed',
            new SpecError('INTERNAL', 'the staged inputs of this item are gone (expired or deleted)'),
          );
    }
    await finishChunk(redis, prefix, ref, lines, this.options.liveTtlS);
    const tally = { succeeded: 0, failed: 0, canceled: 0 };
    for (const l of lines) tally[l.status] += 1;
    for (const [outcome, n] of Object.entries(tally))
      if (n) this.metrics.batchItems.inc({ model: this.model, outcome }, n);
    this.metrics.batchChunks.inc({ model: this.model });
    return tally;
  }

  /** Runs a chunk's items; throws (to retry the chunk) when one failed for a reason that is not the input's. */
  private async runItems(job: Job<ChunkData>, items: StagedItem[]): Promise<ResultLine[]> {
    const d = job.data;
    const toRun = items.filter((it): it is Extract<StagedItem, { input: unknown }> => 'input' in it);
    const settled = await this.intake.run(
      toRun.map((it) => it.input),
      'bulk',
      d.deadline_at,
    );
    const byIndex = new Map<number, ItemSettled>(toRun.map((it, k) => [it.i, settled[k]]));
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const retriable = settled.find((s) => !s.ok && isRetriable(s.error));
    if (retriable && !lastAttempt) {
      this.log.warn(
        { err: (retriable as { error: unknown }).error, batch: d.batch, chunk: d.chunk },
        'batch chunk failed; retrying it',
      );
      throw new Error(asSpecError((retriable as { error: unknown }).error).toReason());
    }
    const now = new Date().toISOString();
    return items.map((it): ResultLine => {
      const request_id = itemRequestId(d.batch, it.i);
      if ('error' in it)
        return { index: it.i, status: 'failed', error: { success: false, ...it.error, request_id }, completed_at: now };
      const s = byIndex.get(it.i)!;
      const completed_at = new Date(s.at).toISOString();
      if (s.ok)
        return {
          index: it.i,
          status: 'succeeded',
          output: { ...s.value.output, request_id, success: true, error_code: 0 },
          completed_at,
        };
      return {
        index: it.i,
        status: 'failed',
        error: asSpecError(s.error).toBody(request_id) as ResultLine['error'],
        completed_at,
      };
    });
  }

  /**
   * The batch's parent job: runs once every chunk is done (or canceled, or failed for good).
   * Chunks that left no results (a chunk that kept killing its workers) are reported here, the
   * keys are set to expire after the retention, and batch.completed is sent.
   */
  private async completeBatch(data: BatchData): Promise<{ total: number }> {
    const { prefix, connection: redis } = this.options;
    const keys = batchKeys(prefix, data.id);
    const stored = new Set(await redis.hkeys(keys.results));
    const canceled = (await redis.hexists(keys.counts, 'canceled_at')) === 1;
    let first = 0;
    for (const [chunk, count] of data.sizes.entries()) {
      first += count;
      if (stored.has(String(chunk))) continue;
      const error = canceled
        ? new SpecError('CANCELED', 'the batch was canceled before this item ran')
        : new SpecError('INFERENCE_FAILED', 'this item could not be run: its chunk failed on every attempt');
      const lines = unranLines(data.id, first - count, count, canceled ? 'canceled' : 'failed', error);
      await finishChunk(
        redis,
        prefix,
        { model: data.model, batch: data.id, chunk, count, chunks: data.chunks },
        lines,
        this.options.liveTtlS,
      );
    }
    const ttl = this.options.retentionS;
    await Promise.all(
      [keys.counts, keys.results, keys.done, keys.started, batchIndexKey(prefix, data.id)].map((k) =>
        redis.expire(k, ttl),
      ),
    );
    const view = batchView(data, await redis.hgetall(keys.counts));
    await enqueueBatchCompleted(this.options.webhooks, data, view);
    return { total: data.total };
  }
}
