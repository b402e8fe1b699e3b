/**
 * R-CNN family: two-stage detectors as the ONNX-zoo Faster/Mask R-CNN exports give them
 * (already suppressed by the model), one image per run: boxes [N, 4] x1, y1, x2, y2 in tensor
 * pixels, labels [N], scores [N], and for Mask R-CNN masks [N, 1, h, w] spanning each box.
 * Serves detect and instances.
 */
import { z } from 'zod';
import { clampBox, tensorBoxToImageExact } from '../geometry.js';
import { asNumbers, itemOutput, manifestProblem, requireOutput } from '../outputs.js';
import type { Detection } from '../postprocess/detections.js';
import { pasteMask } from '../postprocess/masks.js';
import { defineFamily, MaxDetections, Probability, type DecoderSetup, type Detector, type Instance } from './family.js';

const Options = z.object({
  decoder: z.literal('rcnn'),
  score_threshold: Probability.default(0.5),
  /** labels-file line = model label - label_offset (zoo R-CNNs: label 1 is the first name). */
  label_offset: z.number().int().default(1),
  mask_threshold: Probability.default(0.5),
  max_detections: MaxDetections,
});
type RcnnOptions = z.output<typeof Options>;

export interface RcnnDetection extends Detection {
  /** Row in the model's outputs (to find its mask). */
  index: number;
}

export function decodeRcnn(
  boxes: ArrayLike<number>,
  labels: ArrayLike<number | bigint>,
  scores: ArrayLike<number>,
): RcnnDetection[] {
  const n = scores.length;
  if (boxes.length !== n * 4 || labels.length !== n) {
    throw new Error(`R-CNN outputs disagree: ${boxes.length / 4} boxes, ${labels.length} labels, ${n} scores`);
  }
  const out: RcnnDetection[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      box: [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]],
      score: scores[i],
      classId: Number(labels[i]),
      index: i,
    });
  }
  return out;
}

function detector(o: RcnnOptions, { ctx, batched }: DecoderSetup, withMasks: boolean): Detector {
  if (batched) throw manifestProblem(ctx, 'the rcnn decoder reads unbatched outputs: set preprocess.layout to "CHW"');
  const why = 'the rcnn decoder reads boxes [N, 4], labels [N] and scores [N]';
  const names = {
    boxes: requireOutput(ctx, 'boxes', why),
    labels: requireOutput(ctx, 'labels', why),
    scores: requireOutput(ctx, 'scores', why),
  };
  const masksName = withMasks
    ? requireOutput(ctx, 'masks', 'instance segmentation reads R-CNN masks [N, 1, h, w]')
    : null;
  return {
    scoreThreshold: o.score_threshold,
    maxDetections: o.max_detections,
    labelOffset: o.label_offset,
    decode(outputs, index, g, scoreThreshold) {
      const out = (n: string) => itemOutput(outputs, n, index, false);
      const dets = decodeRcnn(
        asNumbers(out(names.boxes).data),
        out(names.labels).data,
        asNumbers(out(names.scores).data),
      );
      const masks = masksName ? out(masksName) : null;
      const maskPlanes = masks ? asNumbers(masks.data) : null;
      return dets
        .filter((d) => d.score >= scoreThreshold)
        .map((d) => {
          const exact = tensorBoxToImageExact(g, d.box);
          const instance: Instance = { box: clampBox(g, exact), score: d.score, classId: d.classId };
          if (masks && maskPlanes) {
            const [mh, mw] = masks.dims.slice(-2);
            const size = mh * mw;
            const plane = Array.prototype.slice.call(maskPlanes, d.index * size, (d.index + 1) * size) as number[];
            instance.mask = () => pasteMask(plane, mw, mh, exact, g.imageWidth, g.imageHeight, o.mask_threshold);
          }
          return instance;
        });
    },
  };
}

export const rcnn = defineFamily({
  decoder: 'rcnn',
  options: Options,
  detect: (o, setup) => detector(o, setup, false),
  instances: (o, setup) => detector(o, setup, true),
});
