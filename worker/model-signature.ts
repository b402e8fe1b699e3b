/**
 * A model file's declared tensor shapes, checked against its manifest when the worker loads it:
 * - a fixed batch dimension (e.g. an export with batch 1) caps the model's batch size;
 * - fixed image sizes must be what the manifest's resize produces, and 3 channels;
 * anything else that cannot work is a start-up error naming the model, the tensor and both shapes.
 */
import path from 'node:path';
import { ImagePreprocessSchema, type ModelEntry, type ResizeSpec } from '../shared/manifest.js';
import { TASKS } from '../shared/tasks.js';
import type { TensorSignature } from './backend/threaded-session.js';

export class ModelSignatureError extends Error {
  override name = 'ModelSignatureError';
}

export interface BatchLimit {
  /** Largest batch the file accepts. */
  size: number;
  /** The tensor whose fixed first dimension sets it. */
  tensor: string;
}

/** Tensor height and width that the resize always produces, or null when they vary with the image. */
export function fixedTensorSize(resize: ResizeSpec): { height: number; width: number } | null {
  switch (resize.mode) {
    case 'stretch':
    case 'letterbox':
      return { height: resize.height, width: resize.width };
    case 'shorter-side':
      return { height: resize.crop.height, width: resize.crop.width };
    case 'fixed-height':
      return { height: resize.height, width: resize.max_width };
    default:
      return null;
  }
}

const show = (shape: ReadonlyArray<number | string>) =>
  `[${shape.map((d) => (typeof d === 'number' ? d : 'N')).join(',')}]`;
const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;

function describeResize(r: ResizeSpec): string {
  const size = fixedTensorSize(r);
  return size ? `${r.mode} ${size.width}×${size.height}` : `${r.mode}, which gives sizes that vary with the image`;
}

/**
 * Checks the declared shapes; returns the batch limit a fixed batch dimension sets (null: none).
 * Tensors the file declares without a shape are not checked.
 */
export function checkSignature(
  entry: ModelEntry,
  inputs: readonly TensorSignature[],
  outputs: readonly TensorSignature[],
): BatchLimit | null {
  const m = entry.manifest;
  const file = path.basename(entry.modelPath ?? '');
  const problem = (tensor: string, shape: ReadonlyArray<number | string>, expected: string) =>
    new ModelSignatureError(
      `model "${m.name}": ${tensor} of ${file} has shape ${show(shape)}; the manifest expects ${expected}`,
    );
  const byName = new Map([...inputs, ...outputs].map((t) => [t.name, t]));
  const modality = TASKS[m.task].modality;
  const pre = modality === 'image' ? ImagePreprocessSchema.parse(m.preprocess) : null;
  const batched = pre ? pre.layout !== 'CHW' : true;

  if (pre) {
    const image = byName.get(m.inputs.image);
    if (image && image.shape.length > 0) {
      const size = fixedTensorSize(pre.resize);
      const H = size?.height ?? 'H';
      const W = size?.width ?? 'W';
      const expected = pre.layout === 'NCHW' ? ['N', 3, H, W] : pre.layout === 'NHWC' ? ['N', H, W, 3] : [3, H, W];
      const expectedText = `[${expected.join(',')}] (preprocess.layout ${pre.layout}, preprocess.resize ${describeResize(pre.resize)})`;
      if (image.shape.length !== expected.length) throw problem(`input "${image.name}"`, image.shape, expectedText);
      // The channel dimension's place is what tells NCHW from NHWC: a file of the other layout fails here.
      const [c, h, w] =
        pre.layout === 'NHWC' ? [image.shape.at(-1), image.shape.at(-3), image.shape.at(-2)] : image.shape.slice(-3);
      if (fixed(c) && c !== 3) throw problem(`input "${image.name}"`, image.shape, expectedText);
      for (const [dim, want] of [
        [h, size?.height],
        [w, size?.width],
      ] as const) {
        if (fixed(dim) && dim !== want) throw problem(`input "${image.name}"`, image.shape, expectedText);
      }
    }
  }

  if (!batched) return null;
  let limit: BatchLimit | null = null;
  const tensors = [...Object.values(m.inputs), ...Object.values(m.outputs)]
    .map((n) => byName.get(n))
    .filter((t): t is TensorSignature => Boolean(t && t.shape.length > 0));
  for (const t of tensors) {
    const first = t.shape[0];
    if (fixed(first) && (!limit || first < limit.size)) limit = { size: first, tensor: t.name };
  }
  return limit;
}
