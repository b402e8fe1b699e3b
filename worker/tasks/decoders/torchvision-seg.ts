/**
 * torchvision segmentation family (DeepLabV3, FCN, LR-ASPP exports): logits [N, C, h, w] over
 * the input tensor. Each image pixel takes the bilinearly resampled logits, then softmax and
 * argmax (as torchvision upsamples logits before its argmax). Serves semantic.
 */
import { z } from 'zod';
import { bilinearAt, imageSampler, type Geometry } from '../geometry.js';
import { asNumbers, itemOutput, requireOutput } from '../outputs.js';
import { defineFamily, type SegmentationMaps } from './family.js';

/** Logits [C, mapH, mapW] → softmax over bilinearly resampled logits at each image pixel. */
export function segmentLogits(
  logits: ArrayLike<number>,
  numClasses: number,
  mapW: number,
  mapH: number,
  g: Geometry,
  perClass: boolean,
): SegmentationMaps {
  const s = imageSampler(g, mapW, mapH);
  const { width, height } = s;
  const plane = mapW * mapH;
  const preds = new Int32Array(width * height);
  const probs = new Float32Array(width * height);
  const planes = perClass ? Array.from({ length: numClasses }, () => new Float32Array(width * height)) : undefined;
  const v = new Float64Array(numClasses);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < numClasses; c++) {
        v[c] = bilinearAt(s, logits, c * plane, x, y);
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

export const torchvisionSeg = defineFamily({
  decoder: 'torchvision-seg',
  options: z.object({ decoder: z.literal('torchvision-seg') }),
  semantic(_o, { ctx, batched }) {
    const name = requireOutput(ctx, 'logits', 'the torchvision-seg decoder reads logits [N, C, H, W]');
    return {
      segment(outputs, index, g, perClass) {
        const { data, dims } = itemOutput(outputs, name, index, batched);
        const [c, h, w] = dims.slice(-3);
        return segmentLogits(asNumbers(data), c, w, h, g, perClass);
      },
      offload(outputs, index, g, perClass) {
        const { data, dims } = itemOutput(outputs, name, index, batched);
        const [c, h, w] = dims.slice(-3);
        // A copy of this item's logits only (the batch's tensor stays with its other items).
        const logits = data instanceof Float32Array ? data.slice() : Float64Array.from(asNumbers(data));
        return {
          fn: 'segmentLogitsTask',
          arg: { logits, numClasses: c, mapW: w, mapH: h, geometry: g, perClass },
          transfer: [logits.buffer],
        };
      },
    };
  },
});
