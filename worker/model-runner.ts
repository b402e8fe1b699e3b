/**
 * One model on one device: an onnxruntime session, its task pipeline and its batcher.
 * `run(input)` preprocesses one job, waits for its inference batch ("batch" in this file), and
 * returns the spec output.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { SpecError } from '../shared/errors.js';
import { sha256File } from '../shared/file-hash.js';
import { verificationOf, type Verification } from '../shared/weights-provenance.js';
import type { Batching, ModelEntry } from '../shared/manifest.js';
import { DynamicBatcher, type ItemOutcome } from './batcher.js';
import {
  deviceName,
  modelSessionTuning,
  sessionOptionsFor,
  type Device,
  type SessionTuning,
} from './backend/device.js';
import { SessionPool } from './backend/session-pool.js';
import { tensorBuffers } from './backend/tensor-buffers.js';
import {
  SessionThreadError,
  ThreadedSession,
  type InferenceBackend,
  type SessionThreadIds,
} from './backend/threaded-session.js';
import { TASK_PIPELINES } from './tasks/index.js';
import type { TaskOptions } from '../shared/options/worker.js';
import { stackFeeds, type PreparedItem, type TaskFactory, type TaskPipeline } from './tasks/task.js';
import type { WorkerMetrics } from './metrics.js';
import { checkSignature, type BatchLimit } from './model-signature.js';
import {
  ATTR,
  activeContext,
  contextWithSpan,
  failSpan,
  inSpan,
  spanContextOf,
  startSpan,
  withContext,
  type Context,
  type Span,
} from '../shared/tracing.js';

/** A traced item's place in its job's trace: its job's context, and its `inference` span (ended when its batch ran). */
interface ItemTrace {
  job: Context;
  inference: Span;
  inferenceContext: Context;
}

export interface RunnerOptions {
  tuning?: SessionTuning;
  /** The task's pipeline unless given (a custom task, or a test's). */
  factory?: TaskFactory;
  /** Called once if the session's thread dies; the worker then exits so its jobs are recovered. */
  onSessionDeath?: (err: Error) => void;
  /** Where the session comes from: models sharing a file share a pooled session. Default: a session of its own. */
  sessions?: SessionPool;
}

/** The weights file a runner loaded, as the catalog, /v1/workers and the metrics show it. */
export interface LoadedWeights {
  file: string;
  sha256: string;
  kind: 'real' | 'test';
  /** Whether the manifest records this digest (verified), not (unverified), or a stand-in (test). */
  verification: Verification;
  /** The manifest's sha256 for this file, when it gives one and the file matches no recorded digest. */
  expected_sha256?: string;
}

export interface RunResult {
  output: Record<string, unknown>;
  preprocessMs: number;
  inferenceMs: number;
  batchSize: number;
}

interface BatchedResult {
  output: Record<string, unknown>;
  inferenceMs: number;
  batchSize: number;
}

export class ModelRunner {
  private readonly batcher: DynamicBatcher<PreparedItem, BatchedResult>;
  private readonly labels: Record<string, string>;
  /** Attributes of every span of this runner: the model and the device. */
  private readonly spanAttributes: Record<string, string>;
  /** Traced items (tracing on), keyed by their prepared item, which the batcher hands back. */
  private readonly traces = new WeakMap<PreparedItem, ItemTrace>();
  /** Jobs inside run(): preprocessing, waiting in the batcher or in session.run. */
  inFlight = 0;

  private constructor(
    readonly entry: ModelEntry,
    readonly device: Device,
    private readonly session: InferenceBackend,
    private readonly pipeline: TaskPipeline,
    private readonly metrics: WorkerMetrics,
    /** The manifest's batching, with max_batch_size capped by a fixed batch dimension of the file. */
    readonly batching: Batching,
    /** Set when the file's fixed batch dimension caps the manifest's max_batch_size. */
    readonly batchLimit: BatchLimit | null,
    readonly weights: LoadedWeights,
  ) {
    this.labels = { model: entry.manifest.name, device: deviceName(device) };
    this.spanAttributes = { [ATTR.model]: entry.manifest.name, [ATTR.device]: deviceName(device) };
    this.batcher = new DynamicBatcher((items) => this.runGroup(items), {
      maxBatchSize: batching.max_batch_size,
      maxDelayMs: batching.max_queue_delay_ms,
      minBatchSize: Math.min(batching.min_batch_size ?? 1, batching.max_batch_size),
      // One batch holds one tensor shape: it is one session.run.
      batchKey: (item) => item.batchKey,
      maxBatchCost: pipeline.maxBatchCost,
      batchCost: pipeline.batchCost?.bind(pipeline),
    });
  }

  static async load(
    entry: ModelEntry,
    device: Device,
    tasks: TaskOptions,
    metrics: WorkerMetrics,
    options: RunnerOptions = {},
  ): Promise<ModelRunner> {
    const { tuning = {}, factory = TASK_PIPELINES[entry.manifest.task], onSessionDeath, sessions } = options;
    const name = entry.manifest.name;
    if (!entry.modelPath) throw new Error(`model "${name}" is unavailable: ${entry.problem}`);
    if (!factory) throw new Error(`model "${name}": task ${entry.manifest.task} has no worker pipeline`);
    const started = performance.now();
    // Off the event loop: onnxruntime-node's run() is synchronous on its calling thread.
    const sessionOptions = sessionOptionsFor(
      device,
      modelSessionTuning(tuning, entry.manifest.session.intra_op_threads),
    );
    const session = sessions
      ? await sessions.acquire(entry.modelPath, sessionOptions)
      : await ThreadedSession.create(entry.modelPath, sessionOptions, onSessionDeath);
    for (const tensor of [...Object.values(entry.manifest.inputs)]) {
      if (!session.inputNames.includes(tensor)) {
        await session.release();
        throw new Error(
          `model "${name}": the ONNX file has no input "${tensor}" (inputs: ${session.inputNames.join(', ')})`,
        );
      }
    }
    for (const tensor of [...Object.values(entry.manifest.outputs)]) {
      if (!session.outputNames.includes(tensor)) {
        await session.release();
        throw new Error(
          `model "${name}": the ONNX file has no output "${tensor}" (outputs: ${session.outputNames.join(', ')})`,
        );
      }
    }
    let limit: BatchLimit | null;
    let pipeline: TaskPipeline;
    try {
      limit = checkSignature(entry, session.signature?.inputs ?? [], session.signature?.outputs ?? []);
      pipeline = factory({ entry, session, options: tasks });
    } catch (err) {
      await session.release();
      throw err;
    }
    const manifestBatching = entry.manifest.batching;
    const capped = limit !== null && limit.size < manifestBatching.max_batch_size;
    const batching = capped ? { ...manifestBatching, max_batch_size: limit!.size } : manifestBatching;
    const sha256 = await sha256File(entry.modelPath);
    const expected = entry.weightsFile?.sha256?.toLowerCase();
    const verification = verificationOf(entry, sha256);
    const weights: LoadedWeights = {
      file: path.basename(entry.modelPath),
      sha256,
      kind: entry.weights ?? 'real',
      verification,
      // Warned about only when the digest is none the manifest records (a copy under another
      // alternative's name, say the re-saved MobileNetV2 under the zoo's name, is still verified).
      ...(expected && verification === 'unverified' ? { expected_sha256: expected } : {}),
    };
    const labels = { model: name, device: deviceName(device) };
    metrics.modelLoadSeconds.set(labels, (performance.now() - started) / 1000);
    metrics.maxInferenceBatchSize.set(labels, batching.max_batch_size);
    metrics.weightsInfo.set(
      { ...labels, file: weights.file, sha256, weights: weights.kind, verification: weights.verification },
      1,
    );
    return new ModelRunner(entry, device, session, pipeline, metrics, batching, capped ? limit : null, weights);
  }

  /** The session's Linux thread ids when it runs on a thread of its own (for per-thread CPU figures). */
  get sessionThreads(): SessionThreadIds | null {
    return 'threadIds' in this.session ? (this.session.threadIds as SessionThreadIds) : null;
  }

  /**
   * Preprocesses `input`, then runs it in an inference batch. `startWhen`, when given, is awaited
   * between the two (a job's run claim: decoding overlaps the claim's round trip, and the item
   * enters a batch only once it is claimed; a rejection ends the run there).
   */
  async run(input: Record<string, unknown>, startWhen?: Promise<unknown>): Promise<RunResult> {
    this.inFlight += 1;
    try {
      const started = performance.now();
      // Decode and preprocess.
      const prepared = await inSpan('preprocess', { attributes: this.spanAttributes }, () =>
        this.pipeline.preprocess(input),
      );
      const preprocessMs = performance.now() - started;
      this.metrics.preprocessSeconds.observe(this.labels, preprocessMs / 1000);
      if (startWhen) await startWhen;
      const job = activeContext();
      // This job's wait for its batch and the batch's session.run; the batch ends it.
      const inference = job && startSpan('inference', { attributes: this.spanAttributes, parent: job });
      if (job && inference)
        this.traces.set(prepared, { job, inference, inferenceContext: contextWithSpan(job, inference) });
      try {
        const result = await this.batcher.submit(prepared);
        return { ...result, preprocessMs };
      } finally {
        // Ended by its batch, unless that never ran (the span's end is idempotent: a second is ignored).
        if (inference?.isRecording()) inference.end();
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Waits for every submitted job's batch to finish. */
  drain(): Promise<void> {
    return this.batcher.drain();
  }

  async close(): Promise<void> {
    await this.drain();
    await this.session.release();
  }

  /**
   * A batch's span (tracing on): one batch serves many jobs, so it links to every traced item's
   * `inference` span; its parent is the first item's, so a job that ran alone has a single tree.
   */
  private batchSpan(traced: (ItemTrace | undefined)[], size: number): Span | undefined {
    const first = traced.find((t) => t !== undefined);
    if (!first) return undefined;
    const links = traced.flatMap((t) => {
      const sc = spanContextOf(t?.inferenceContext);
      return sc ? [{ context: sc }] : [];
    });
    return startSpan(`inference batch ${this.entry.manifest.name}`, {
      parent: first.inferenceContext,
      links,
      attributes: { ...this.spanAttributes, [ATTR.batchSize]: size, [ATTR.messagingBatchCount]: size },
    });
  }

  /** One batch (one tensor shape): one session.run, postprocessed per item. */
  private async runGroup(group: PreparedItem[]): Promise<ItemOutcome<BatchedResult>[]> {
    let outputs: ort.InferenceSession.ReturnType;
    const traced = group.map((item) => this.traces.get(item));
    const batchSpan = this.batchSpan(traced, group.length);
    const started = performance.now();
    try {
      // A stacked batch is a fresh buffer: it moves to the session thread without a copy (a
      // task's own collate may hand over its items' buffers, which a retry would need: copied,
      // unless it says they may move: freshFeeds).
      const feeds = this.pipeline.collate ? this.pipeline.collate(group) : stackFeeds(group);
      outputs = await this.session.run(feeds, {
        transfer: !this.pipeline.collate || this.pipeline.freshFeeds === true,
      });
    } catch (error) {
      failSpan(batchSpan, error);
      batchSpan?.end();
      this.metrics.inferenceErrors.inc(this.labels);
      // One bad item must not fail its batch-mates: rerun each alone so only the culprit fails
      // (unless the session itself is gone: then every job fails, to be retried elsewhere).
      if (group.length > 1 && !(error instanceof SessionThreadError))
        return Promise.all(group.map(async (item) => (await this.runGroup([item]))[0]));
      const failed = new SpecError('INFERENCE_FAILED', `inference failed: ${(error as Error).message}`);
      for (const t of traced) {
        failSpan(t?.inference, failed);
        t?.inference.end();
      }
      return group.map(() => ({ ok: false, error: failed }));
    }
    batchSpan?.end();
    // The batch ran, so its items' tensors are done with (only a failed batch is retried, item by
    // item): their buffers serve the next images' tensors (see tensor-buffers.ts).
    for (const item of group) for (const feed of Object.values(item.feeds)) tensorBuffers.recycleView(feed.data);
    for (const t of traced) {
      t?.inference.setAttribute(ATTR.batchSize, group.length);
      t?.inference.end();
    }
    const inferenceMs = performance.now() - started;
    this.metrics.inferenceSeconds.observe(this.labels, inferenceMs / 1000);
    this.metrics.inferenceBatchSize.observe(this.labels, group.length);
    this.metrics.sessionRuns.inc(this.labels);
    // Postprocessing is not part of the batch: the next batch's session.run starts meanwhile
    // (formatting a large answer, e.g. 512 × 768 BERT states, takes a while).
    return group.map((item, i) => {
      const value = Promise.resolve()
        .then(() =>
          withContext(traced[i]?.job, () =>
            inSpan('postprocess', { attributes: this.spanAttributes }, () =>
              this.pipeline.postprocess(outputs, i, item),
            ),
          ),
        )
        .then((output) => ({ output, inferenceMs, batchSize: group.length }));
      value.catch(() => undefined); // handled by the job that awaits it
      return { ok: true, value };
    });
  }
}
