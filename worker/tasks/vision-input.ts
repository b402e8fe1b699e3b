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
import { stackFeeds, type PreparedItem, type TaskContext } from './task.js';

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
  /** Whether collate builds new buffers (which may move to the session thread without a copy). */
  freshFeeds: boolean;
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
    return stackFeeds(items);
  }
  const { width: W, height: H } = items[0].bucket!;
  const plane = W * H;
  const out = new Float32Array(items.length * 3 * plane);
  items.forEach((item, i) => {
    const pad = item.bucket!;
    if (pad.width !== W || pad.height !== H) throw new Error(`items of one batch differ in bucket shape`);
    const { data, dims } = item.feeds[inputName];
    const [, h, w] = dims;
    const src = data as Float32Array;
    for (let c = 0; c < 3; c++) {
      const base = (i * 3 + c) * plane;
      if (pad.fill[c] !== 0) out.fill(pad.fill[c], base, base + plane);
      for (let y = 0; y < h; y++) out.set(src.subarray((c * h + y) * w, (c * h + y + 1) * w), base + y * W);
    }
    item.geometry = { ...pad.own, tensorWidth: W, tensorHeight: H };
  });
  return { [inputName]: new ort.Tensor('float32', out, [items.length, 3, H, W]) };
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
    ctx.config.MODELHUB_PAD_TO_BUCKET === 'off' || pre.layout !== 'NCHW'
      ? undefined
      : ctx.entry.manifest.batching.pad_to_bucket;
  const fill = bucket ? bucketPadValues(pre, bucket.pad_value) : [];
  const limits = {
    maxImageBytes: ctx.config.MAX_IMAGE_BYTES,
    maxImagePixels: ctx.config.MAX_IMAGE_PIXELS,
    decodeTimeoutS: ctx.config.IMAGE_DECODE_TIMEOUT_S,
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
