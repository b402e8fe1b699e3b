/**
 * TensorFlow segmentation family (DeepLab exports converted with tf2onnx): logits [N, h, w, C],
 * NHWC, over the model's fixed input (257 × 257 for deeplabv3_257_mv_gpu). The logits are moved
 * to planes, then, as for torchvision, each image pixel takes the bilinearly resampled logits
 * before softmax and argmax: the answer is at the image's own size, not the model's. Serves semantic.
 */
import { z } from 'zod';
import { asNumbers, itemOutput, manifestProblem, requireOutput } from '../outputs.js';
import { defineFamily } from './family.js';
import { segmentLogits } from './torchvision-seg.js';

/** Interleaved [h, w, C] → planes [C, h, w] (a copy). */
export function interleavedToPlanes(
  data: ArrayLike<number>,
  h: number,
  w: number,
  c: number,
): Float32Array<ArrayBuffer> {
  const plane = h * w;
  const out = new Float32Array(c * plane);
  for (let p = 0, i = 0; p < plane; p++) {
    for (let k = 0; k < c; k++, i++) out[k * plane + p] = data[i];
  }
  return out;
}

export const tfSeg = defineFamily({
  decoder: 'tf-seg',
  options: z.object({ decoder: z.literal('tf-seg') }),
  semantic(_o, { ctx, batched }) {
    const name = requireOutput(ctx, 'logits', 'the tf-seg decoder reads logits [N, H, W, C]');
    if (!batched) throw manifestProblem(ctx, 'the tf-seg decoder reads batched outputs: preprocess.layout "NHWC"');
    const planes = (outputs: Parameters<typeof itemOutput>[0], index: number) => {
      const { data, dims } = itemOutput(outputs, name, index, batched);
      const [h, w, c] = dims.slice(-3);
      return { logits: interleavedToPlanes(asNumbers(data), h, w, c), h, w, c };
    };
    return {
      segment(outputs, index, g, perClass) {
        const { logits, h, w, c } = planes(outputs, index);
        return segmentLogits(logits, c, w, h, g, perClass);
      },
      offload(outputs, index, g, perClass) {
        // The transposed copy is this item's own: it moves to the thread without another copy.
        const { logits, h, w, c } = planes(outputs, index);
        return {
          fn: 'segmentLogitsTask',
          arg: { logits, numClasses: c, mapW: w, mapH: h, geometry: g, perClass },
          transfer: [logits.buffer],
        };
      },
    };
  },
});
