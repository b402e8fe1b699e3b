/**
 * The image side shared by every image task (classification, detection, segmentation): decode → tensor per the
 * manifest, with the geometry kept on the item so postprocessing can map back to input
 * pixels. Batched exports (NCHW) batch images whose tensors share a shape; unbatched exports
 * (CHW, e.g. the ONNX-zoo R-CNNs) get one session.run per image via a unique batch key.
 *
 * Shape buckets (manifest batching.pad_to_bucket): an image's tensor keeps its own shape, and its
 * batch key is its bucket's shape, so images of nearby sizes still share a batch. Padding happens
 * at collate, only when a batch really mixes sizes: a batch whose images share one shape (a
 * uniform stream of pages) runs at that shape, unpadded.
 */
import * as ort from 'onnxruntime-node';
import type { z } from 'zod';
import { SpecError } from '../../shared/errors.js';
import { firstProblem } from '../../shared/validation.js';
import { ImagePreprocessSchema } from '../../shared/manifest.js';
import { bucketShape } from './buckets.js';
import type { Geometry } from './geometry.js';
import { bucketPadValues, loadImageTensor, planesToInterleaved } from './image-preprocess.js';
import { tensorBuffers } from '../backend/tensor-buffers.js';
import type { PreparedItem, TaskContext } from './task.js';

/** Where an image goes when its batch mixes sizes: its bucket's shape, padded right and bottom. */
export interface BucketPad {
  width: number;
  height: number;
  /** Per tensor channel, what the padding holds (normalised). */
  fill: readonly number[];
  /** The geometry of the image's own, unpadded tensor. */
  own: Geometry;
}

export interface VisionItem<O> extends PreparedItem {
  /** The geometry of the tensor the item ran in (its own shape, or its bucket's when the batch mixed sizes). */
  geometry: Geometry;
  options: O;
  bucket?: BucketPad;
}

export interface VisionInput<O> {
  /** Whether the model takes a batch dimension (NCHW, NHWC) or one image (CHW). */
  batched: boolean;
  preprocess(input: Record<string, unknown>): Promise<VisionItem<O>>;
  collate(items: VisionItem<O>[]): Record<string, ort.Tensor>;
  /** Whether collate's buffers may move to the session thread without a copy (see TaskPipeline.freshFeeds). */
  freshFeeds: boolean;
  /** A batch's tensor pixels (images × the shape it runs in), held to the manifest's batching.max_batch_pixels. */
  batchCost(items: readonly VisionItem<O>[]): number;
  maxBatchCost: number | undefined;
}

/** Pixels of the tensor each image of a batch runs in: its own shape, or its bucket's when the batch mixes shapes. */
function runPixels<O>(items: readonly VisionItem<O>[]): number {
  const own = items.map((item) => item.bucket?.own ?? item.geometry);
  const { tensorWidth: w, tensorHeight: h } = own[0];
  const mixed = own.some((g) => g.tensorWidth !== w || g.tensorHeight !== h);
  const bucket = items[0].bucket;
  return mixed && bucket ? bucket.width * bucket.height : w * h;
}

/**
 * Items of one batch key stacked: as they are when they share a shape, else each padded into
 * their (common) bucket shape. Sets each item's geometry to the tensor it runs in.
 */
export function collateImages<O>(items: VisionItem<O>[], inputName: string): Record<string, ort.Tensor> {
  const shape = items[0].feeds[inputName].dims.join('x');
  const uniform = items.every(({ feeds }) => feeds[inputName].dims.join('x') === shape);
  if (uniform) {
    for (const item of items) if (item.bucket) item.geometry = item.bucket.own;
    if (items.length === 1) {
      // An image alone runs in its own tensor: no copy. It may move to the session thread, as
      // a fresh stack would: a batch of one is never retried (see ModelRunner.runGroup).
      const { data, dims } = items[0].feeds[inputName];
      return { [inputName]: new ort.Tensor('float32', data as Float32Array, [1, ...dims]) };
    }
    return stackImages(items, inputName);
  }
  const { width: W, height: H } = items[0].bucket!;
  const plane = W * H;
  const out = tensorBuffers.float32(items.length * 3 * plane);
  items.forEach((item, i) => {
    const pad = item.bucket!;
    if (pad.width !== W || pad.height !== H) throw new Error(`items of one batch differ in bucket shape`);
    const { data, dims } = item.feeds[inputName];
    const [, h, w] = dims;
    const src = data as Float32Array;
    for (let c = 0; c < 3; c++) {
      const base = (i * 3 + c) * plane;
      // Only the padding is filled (the buffer may be a recycled one): right of each row, then below.
      for (let y = 0; y < h; y++) {
        out.set(src.subarray((c * h + y) * w, (c * h + y + 1) * w), base + y * W);
        if (w < W) out.fill(pad.fill[c], base + y * W + w, base + (y + 1) * W);
      }
      out.fill(pad.fill[c], base + h * W, base + plane);
    }
    item.geometry = { ...pad.own, tensorWidth: W, tensorHeight: H };
  });
  return { [inputName]: new ort.Tensor('float32', out, [items.length, 3, H, W]) };
}

/** Equal-shaped images stacked into one [N, 3, H, W] tensor, in a recycled buffer where one fits. */
function stackImages<O>(items: VisionItem<O>[], inputName: string): Record<string, ort.Tensor> {
  const { dims } = items[0].feeds[inputName];
  const size = dims.reduce((a, b) => a * b, 1);
  const out = tensorBuffers.float32(items.length * size);
  items.forEach((item, i) => out.set(item.feeds[inputName].data as Float32Array, i * size));
  return { [inputName]: new ort.Tensor('float32', out, [items.length, ...dims]) };
}

let singleRunCounter = 0;

/** `optionsSchema` validates the request's fields other than `image` (the API did already; the worker does not trust it). */
export function visionInput<S extends z.ZodType>(ctx: TaskContext, optionsSchema: S): VisionInput<z.output<S>> {
  const pre = ImagePreprocessSchema.parse(ctx.entry.manifest.preprocess);
  const inputName = ctx.entry.manifest.inputs.image;
  const batched = pre.layout !== 'CHW';
  // The batch key below is the bucket's shape: images of one bucket batch together (NCHW only:
  // the manifest loader allows buckets there alone).
  const bucket =
    !ctx.options.padToBucket || pre.layout !== 'NCHW' ? undefined : ctx.entry.manifest.batching.pad_to_bucket;
  const fill = bucket ? bucketPadValues(pre, bucket.pad_value) : [];
  const limits = {
    maxImageBytes: ctx.options.maxImageBytes,
    maxImagePixels: ctx.options.maxImagePixels,
    decodeTimeoutS: ctx.options.decodeTimeoutS,
  };
  return {
    batched,
    async preprocess(input) {
      const { image, ...rest } = input;
      const parsed = optionsSchema.safeParse(rest);
      if (!parsed.success) {
        throw new SpecError('INVALID_OPTION', firstProblem(parsed.error, 'input'));
      }
      if (typeof image !== 'string') throw new SpecError('INVALID_INPUT', 'image must be a base64 string');
      const tensor = await loadImageTensor(image, limits, pre, { timeoutS: limits.decodeTimeoutS });
      const [, height, width] = tensor.dims;
      const shape = bucket ? bucketShape({ width, height }, bucket) : { width, height };
      const feed =
        pre.layout === 'NHWC'
          ? {
              type: 'float32' as const,
              data: planesToInterleaved(tensor.data, height, width),
              dims: [height, width, 3],
            }
          : { type: 'float32' as const, data: tensor.data, dims: tensor.dims };
      return {
        feeds: { [inputName]: feed },
        batchKey: batched ? `3x${shape.height}x${shape.width}` : `single-${++singleRunCounter}`,
        geometry: tensor.geometry,
        options: parsed.data,
        ...(bucket ? { bucket: { ...shape, fill, own: tensor.geometry } } : {}),
      };
    },
    freshFeeds: batched,
    batchCost: (items) => items.length * runPixels(items),
    maxBatchCost: ctx.entry.manifest.batching.max_batch_pixels,
    collate: batched
      ? (items) => collateImages(items, inputName)
      : (items) => {
          if (items.length !== 1)
            throw new Error(`model "${ctx.entry.manifest.name}" takes one image per run; got ${items.length}`);
          const feed = items[0].feeds[inputName];
          return { [inputName]: new ort.Tensor('float32', feed.data as Float32Array, feed.dims) };
        },
  };
}
