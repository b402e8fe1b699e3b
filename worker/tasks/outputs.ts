/**
 * Reading a model's outputs: one item's slice of a batched output (or the whole output of an
 * unbatched model), and the manifest's output roles. Every task and decoder reads through here.
 */
import type * as ort from 'onnxruntime-node';
import type { TaskContext } from './task.js';

export interface ItemOutput {
  data: ArrayLike<number> | ArrayLike<bigint>;
  /** Dims without the batch dimension. */
  dims: number[];
}

export function outputTensor(outputs: ort.InferenceSession.ReturnType, name: string): ort.Tensor {
  const t = outputs[name] as ort.Tensor | undefined;
  if (!t) throw new Error(`model produced no output named "${name}" (has: ${Object.keys(outputs).join(', ')})`);
  return t;
}

/** One item's part of an output: row `index` of a batched output, the whole output of an unbatched model. */
export function itemOutput(
  outputs: ort.InferenceSession.ReturnType,
  name: string,
  index: number,
  batched = true,
): ItemOutput {
  const t = outputTensor(outputs, name);
  if (!batched) return { data: t.data as ArrayLike<number>, dims: [...t.dims] };
  const dims = t.dims.slice(1);
  const size = dims.reduce((a, b) => a * b, 1);
  const data = t.data as Float32Array | BigInt64Array;
  return { data: data.subarray(index * size, (index + 1) * size), dims };
}

/** Float view of an output (int64 labels become numbers). */
export function asNumbers(data: ItemOutput['data']): ArrayLike<number> {
  if (data instanceof BigInt64Array) return Float64Array.from(data, (v) => Number(v));
  return data as ArrayLike<number>;
}

/** A manifest problem found when the worker builds the pipeline: names the model and the fix. */
export function manifestProblem(ctx: TaskContext, problem: string): Error {
  return new Error(`model "${ctx.entry.manifest.name}": ${problem}`);
}

/** The tensor name the manifest gives an output role, or a start-up error saying what reads it. */
export function requireOutput(ctx: TaskContext, role: string, why: string): string {
  const name = ctx.entry.manifest.outputs[role];
  if (!name) throw manifestProblem(ctx, `outputs.${role} (tensor name) is required: ${why}`);
  return name;
}
