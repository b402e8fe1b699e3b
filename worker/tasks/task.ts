/**
 * The contract every task implements: preprocess (per job, concurrently) → collate (stack a
 * batch into feeds) → forward (one session.run, done by the model runner) → postprocess (per
 * job). Nothing here knows about queues; nothing in the queue layer knows about tasks.
 */
import * as ort from 'onnxruntime-node';
import type { ModelEntry } from '../../shared/manifest.js';
import type { TaskOptions } from '../../shared/options/worker.js';

export interface FeedPart {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  /** The item's dims without the batch dimension. */
  dims: number[];
}

export interface PreparedItem {
  /**
   * Per input tensor name, this item's slice. Once the item's batch has run, the runner recycles
   * these buffers for later tensors (worker/backend/tensor-buffers.ts): postprocess must not read them.
   */
  feeds: Record<string, FeedPart>;
  /** Items batch together only when their keys are equal (same tensor shapes). */
  batchKey: string;
}

export interface SessionInfo {
  inputNames: readonly string[];
  outputNames: readonly string[];
}

export interface TaskContext {
  entry: ModelEntry;
  session: SessionInfo;
  /** Its inputs' and outputs' bounds, resolved once by the worker's entry point. */
  options: TaskOptions;
}

export interface TaskPipeline<P extends PreparedItem = PreparedItem> {
  preprocess(input: Record<string, unknown>): Promise<P>;
  /** Builds the feeds of one batch; the default stacks every feed along a new batch dimension. */
  collate?(items: P[]): Record<string, ort.Tensor>;
  /**
   * Whether collate's buffers may move to the session thread: new ones, or a lone item's own (a
   * batch of one is never retried). Else they are copied, as a retry needs the items'.
   */
  freshFeeds?: boolean;
  /** Cost of a batch for the batcher's budget (e.g. padded tokens); absent means count only. */
  batchCost?(items: readonly P[]): number;
  /** The budget batchCost is held to: the manifest's, in the task's unit (tokens, pixels). Absent: none. */
  maxBatchCost?: number;
  postprocess(
    outputs: ort.InferenceSession.ReturnType,
    index: number,
    item: P,
  ): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** Builds a model's pipeline once, at load; throws a manifest problem it finds (naming the model). */
export type TaskFactory<P extends PreparedItem = PreparedItem> = (ctx: TaskContext) => TaskPipeline<P>;

/**
 * A task's definition, typed by the item its preprocess produces: collate, batchCost and
 * postprocess receive that same item type. The runner only ever hands a pipeline back its own
 * items, which is why a TaskFactory<P> serves where a TaskFactory is expected.
 */
export function defineTask<P extends PreparedItem>(build: TaskFactory<P>): TaskFactory<P> {
  return build;
}

/** Stacks each named feed of equal-shaped items into one [N, ...dims] tensor. */
export function stackFeeds(items: PreparedItem[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of Object.keys(items[0].feeds)) {
    const first = items[0].feeds[name];
    const size = first.data.length;
    // Items share a batchKey only when their shapes agree; a mismatch is a bug, never silently stacked.
    const odd = items.find((it) => it.feeds[name].data.length !== size);
    if (odd)
      throw new Error(`feed "${name}": items of one batch differ in size (${odd.feeds[name].data.length} vs ${size})`);
    if (first.type === 'float32') {
      const out = new Float32Array(size * items.length);
      items.forEach((it, i) => out.set(it.feeds[name].data as Float32Array, i * size));
      feeds[name] = new ort.Tensor('float32', out, [items.length, ...first.dims]);
    } else {
      const out = new BigInt64Array(size * items.length);
      items.forEach((it, i) => out.set(it.feeds[name].data as BigInt64Array, i * size));
      feeds[name] = new ort.Tensor('int64', out, [items.length, ...first.dims]);
    }
  }
  return feeds;
}
