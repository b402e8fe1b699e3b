/**
 * Spec §1.3 semantic segmentation: per input-image pixel, `preds` (class id) and `probs`
 * (probability of that class; all classes' with per_class_probs). The model's map is
 * resampled through the preprocessing geometry, so answers are at the input image's size.
 * Decoders (manifest postprocess.decoder):
 * - torchvision-seg: logits [N, C, h, w] (DeepLabV3 export): bilinear logits → softmax → argmax.
 * - dbnet: a text probability map [N, 1, h, w] as two classes, background and text
 *   (text where p > thresh, DBNet's own binarization threshold).
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { TASKS, type MaskEncoding } from '../../shared/tasks.js';
import { allProblems } from '../../shared/validation.js';
import type { Geometry } from './image-preprocess.js';
import { classMapToPng, encodeRle, probsToPng, toRows } from './postprocess/mask-encoding.js';
import { imageSampler, resamplePlane } from './postprocess/masks.js';
import { asNumbers, itemOutput, manifestProblem, requireOutput, visionInput, type VisionItem } from './vision-input.js';
import type { TaskContext, TaskFactory, TaskPipeline } from './task.js';

const Options = TASKS['semantic-segmentation'].input.omit({ image: true });

const DecoderSchema = z.discriminatedUnion('decoder', [
  z.object({ decoder: z.literal('torchvision-seg') }),
  z.object({ decoder: z.literal('dbnet'), thresh: z.number().min(0).max(1).default(0.3) }),
]);

/** Per-pixel answer at image size, row-major. */
export interface SegmentationMaps {
  width: number;
  height: number;
  numClasses: number;
  preds: Int32Array;
  probs: Float32Array;
  /** numClasses planes, only when asked for. */
  perClass?: Float32Array[];
}

/** Logits [C, mapH, mapW] → softmax over bilinearly resampled logits at each image pixel. */
export function segmentLogits(logits: ArrayLike<number>, numClasses: number, mapW: number, mapH: number, g: Geometry, perClass: boolean): SegmentationMaps {
  const s = imageSampler(g, mapW, mapH);
  const { width, height } = s;
  const plane = mapW * mapH;
  const preds = new Int32Array(width * height);
  const probs = new Float32Array(width * height);
  const planes = perClass ? Array.from({ length: numClasses }, () => new Float32Array(width * height)) : undefined;
  const v = new Float64Array(numClasses);
  for (let y = 0; y < height; y++) {
    const r0 = s.y.i0[y] * mapW;
    const r1 = s.y.i1[y] * mapW;
    const wy = s.y.w[y];
    for (let x = 0; x < width; x++) {
      const a = s.x.i0[x];
      const b = s.x.i1[x];
      const wx = s.x.w[x];
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < numClasses; c++) {
        const o = c * plane;
        const top = logits[o + r0 + a] * (1 - wx) + logits[o + r0 + b] * wx;
        const bottom = logits[o + r1 + a] * (1 - wx) + logits[o + r1 + b] * wx;
        v[c] = top * (1 - wy) + bottom * wy;
        if (v[c] > max) {
          max = v[c];
          best = c;
        }
      }
      let sum = 0;
      for (let c = 0; c < numClasses; c++) sum += Math.exp(v[c] - max);
      const i = y * width + x;
      preds[i] = best;
      probs[i] = 1 / sum;
      if (planes) for (let c = 0; c < numClasses; c++) planes[c][i] = Math.exp(v[c] - max) / sum;
    }
  }
  return { width, height, numClasses, preds, probs, perClass: planes };
}

/** A text probability map as background (0) / text (1). */
export function segmentProbabilityMap(map: ArrayLike<number>, mapW: number, mapH: number, g: Geometry, thresh: number, perClass: boolean): SegmentationMaps {
  const p = resamplePlane(imageSampler(g, mapW, mapH), map);
  const preds = Int32Array.from(p, (v) => (v > thresh ? 1 : 0));
  const probs = Float32Array.from(p, (v, i) => (preds[i] ? v : 1 - v));
  const perClassPlanes = perClass ? [Float32Array.from(p, (v) => 1 - v), p] : undefined;
  return { width: g.imageWidth, height: g.imageHeight, numClasses: 2, preds, probs, perClass: perClassPlanes };
}

/** The spec's fields in the requested encoding (see docs/models-vision.md). */
export async function encodeSegmentation(m: SegmentationMaps, encoding: MaskEncoding): Promise<{ probs: unknown; preds: unknown }> {
  const { width: w, height: h } = m;
  const probPlanes = m.perClass ?? [m.probs];
  const probs =
    encoding === 'array'
      ? probPlanes.map((p) => toRows(p, w, h, (v) => v))
      : await Promise.all(probPlanes.map((p) => probsToPng(p, w, h)));
  let preds: unknown;
  if (encoding === 'array') preds = toRows(m.preds, w, h, (v) => v);
  else if (encoding === 'png') preds = await classMapToPng(m.preds, w, h, m.numClasses);
  else {
    const present = [...new Set(m.preds)].sort((a, b) => a - b);
    preds = present.map((c) => ({ class: c, ...encodeRle(Uint8Array.from(m.preds, (v) => (v === c ? 1 : 0)), w, h) }));
  }
  return { probs: m.perClass ? probs : probs[0], preds };
}

type Segmenter = (outputs: ort.InferenceSession.ReturnType, index: number, g: Geometry, perClass: boolean) => SegmentationMaps;

function segmenter(ctx: TaskContext, batched: boolean): Segmenter {
  const parsed = DecoderSchema.safeParse(ctx.entry.manifest.postprocess);
  if (!parsed.success) {
    throw manifestProblem(ctx, `invalid postprocess (decoder: torchvision-seg | dbnet): ${allProblems(parsed.error, 'decoder')}`);
  }
  const cfg = parsed.data;
  if (cfg.decoder === 'dbnet') {
    const name = requireOutput(ctx, 'probability_map', 'the dbnet decoder reads a [N, 1, H, W] probability map');
    return (outputs, index, g, perClass) => {
      const { data, dims } = itemOutput(outputs, name, index, batched);
      const [h, w] = dims.slice(-2);
      return segmentProbabilityMap(asNumbers(data), w, h, g, cfg.thresh, perClass);
    };
  }
  const name = requireOutput(ctx, 'logits', 'the torchvision-seg decoder reads logits [N, C, H, W]');
  return (outputs, index, g, perClass) => {
    const { data, dims } = itemOutput(outputs, name, index, batched);
    const [c, h, w] = dims.slice(-3);
    return segmentLogits(asNumbers(data), c, w, h, g, perClass);
  };
}

export const semanticSegmentation: TaskFactory = (ctx) => {
  const input = visionInput(ctx, Options);
  const segment = segmenter(ctx, input.batched);
  const pipeline: TaskPipeline<VisionItem<typeof Options._output>> = {
    preprocess: input.preprocess,
    collate: input.collate,
    async postprocess(outputs, index, item) {
      const maps = segment(outputs, index, item.geometry, item.options.per_class_probs);
      return encodeSegmentation(maps, item.options.encoding);
    },
  };
  return pipeline as unknown as TaskPipeline;
};
