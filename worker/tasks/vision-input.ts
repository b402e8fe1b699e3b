/**
 * The image side shared by every image task (classification, detection, segmentation): decode → tensor per the
 * manifest, with the geometry kept on the item so postprocessing can map back to input
 * pixels. Batched exports (NCHW) batch images whose tensors share a shape; unbatched exports
 * (CHW, e.g. the ONNX-zoo R-CNNs) get one session.run per image via a unique batch key.
 */
import * as ort from 'onnxruntime-node';
import type { z } from 'zod';
import { SpecError } from '../../shared/errors.js';
import { firstProblem } from '../../shared/validation.js';
import { ImagePreprocessSchema } from '../../shared/manifest.js';
import type { Geometry } from './geometry.js';
import { loadImageTensor, planesToInterleaved } from './image-preprocess.js';
import type { PreparedItem, TaskContext } from './task.js';

export interface VisionItem<O> extends PreparedItem {
  geometry: Geometry;
  options: O;
}

export interface VisionInput<O> {
  /** Whether the model takes a batch dimension (NCHW, NHWC) or one image (CHW). */
  batched: boolean;
  preprocess(input: Record<string, unknown>): Promise<VisionItem<O>>;
  collate?(items: VisionItem<O>[]): Record<string, ort.Tensor>;
}

let singleRunCounter = 0;

/** `optionsSchema` validates the request's fields other than `image` (the API did already; the worker does not trust it). */
export function visionInput<S extends z.ZodType>(ctx: TaskContext, optionsSchema: S): VisionInput<z.output<S>> {
  const pre = ImagePreprocessSchema.parse(ctx.entry.manifest.preprocess);
  const inputName = ctx.entry.manifest.inputs.image;
  const batched = pre.layout !== 'CHW';
  // The batch key below is the padded shape: images of one bucket batch together.
  const bucket = ctx.config.MODELHUB_PAD_TO_BUCKET === 'off' ? undefined : ctx.entry.manifest.batching.pad_to_bucket;
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
      const tensor = await loadImageTensor(image, limits, pre, {
        timeoutS: limits.decodeTimeoutS,
        bucket,
      });
      const [, h, w] = tensor.dims;
      const feed =
        pre.layout === 'NHWC'
          ? { type: 'float32' as const, data: planesToInterleaved(tensor.data, h, w), dims: [h, w, 3] }
          : { type: 'float32' as const, data: tensor.data, dims: tensor.dims };
      return {
        feeds: { [inputName]: feed },
        batchKey: batched ? tensor.dims.join('x') : `single-${++singleRunCounter}`,
        geometry: tensor.geometry,
        options: parsed.data,
      };
    },
    collate: batched
      ? undefined
      : (items) => {
          if (items.length !== 1)
            throw new Error(`model "${ctx.entry.manifest.name}" takes one image per run; got ${items.length}`);
          const feed = items[0].feeds[inputName];
          return { [inputName]: new ort.Tensor('float32', feed.data as Float32Array, feed.dims) };
        },
  };
}
