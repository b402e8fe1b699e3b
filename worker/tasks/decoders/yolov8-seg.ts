/**
 * YOLOv8-seg family (Ultralytics segmentation exports): `output0` [N, 4 + C + M, A] per anchor
 * cx, cy, w, h (input-tensor pixels), C class scores, M mask coefficients; `output1`
 * [N, M, h, w] mask prototypes over the input tensor. Boxes as the yolo family decodes them
 * (class-wise NMS here); an instance's mask = sigmoid(coefficients · prototypes), upsampled
 * bilinearly to the input image and cropped to its box (as Ultralytics' process_mask).
 * Serves detect and instances.
 */
import { z } from 'zod';
import {
  imageSampler,
  pixelsInBox,
  tensorBoxToImage,
  thresholdIntoImage,
  type Box,
  type Geometry,
} from '../geometry.js';
import { asNumbers, itemOutput, requireOutput } from '../outputs.js';
import { defineFamily, Probability, type DecoderSetup, type Detector, type Instance } from './family.js';
import { decodeYoloAnchors, yoloDefaults, YoloOptions, yoloParams } from './yolo.js';

const Options = YoloOptions.extend({
  decoder: z.literal('yolov8-seg'),
  /** A pixel belongs to the instance where the upsampled sigmoid(coefficients · prototypes) exceeds this. */
  mask_threshold: Probability.default(0.5),
});
type SegOptions = z.output<typeof Options>;

/**
 * One instance's mask at the image's size: the prototype combination at prototype resolution,
 * then read bilinearly at the pixels of its box only (everything outside the box is 0).
 */
export function yoloSegMask(
  coefficients: ArrayLike<number>,
  prototypes: ArrayLike<number>,
  protoW: number,
  protoH: number,
  box: Box,
  g: Geometry,
  threshold: number,
): Uint8Array {
  const plane = protoW * protoH;
  const logits = new Float32Array(plane);
  for (let m = 0; m < coefficients.length; m++) {
    const c = coefficients[m];
    if (c === 0) continue;
    const o = m * plane;
    for (let i = 0; i < plane; i++) logits[i] += c * prototypes[o + i];
  }
  const probs = logits.map((v) => 1 / (1 + Math.exp(-v)));
  const sampler = imageSampler(g, protoW, protoH, pixelsInBox(box, g.imageWidth, g.imageHeight));
  return thresholdIntoImage(sampler, probs, threshold, g.imageWidth, g.imageHeight);
}

function detector(o: SegOptions, { ctx, batched }: DecoderSetup, withMasks: boolean): Detector {
  const predName = requireOutput(
    ctx,
    'predictions',
    'the yolov8-seg decoder reads [N, 4 + classes + coefficients, anchors]',
  );
  const protoName = requireOutput(
    ctx,
    'prototypes',
    'the yolov8-seg decoder reads mask prototypes [N, coefficients, h, w]',
  );
  return {
    ...yoloDefaults(o),
    decode(outputs, index, g, scoreThreshold) {
      const pred = itemOutput(outputs, predName, index, batched);
      const proto = itemOutput(outputs, protoName, index, batched);
      const [rows, anchors] = pred.dims.slice(-2);
      const [numMasks, protoH, protoW] = proto.dims.slice(-3);
      const data = asNumbers(pred.data);
      const classes = rows - 4 - numMasks;
      if (classes < 1)
        throw new Error(
          `YOLOv8-seg output has ${rows} rows and ${numMasks} prototypes; expected 4 box rows, class rows and ${numMasks} coefficient rows`,
        );
      const dets = decodeYoloAnchors(data, rows, anchors, yoloParams(o, scoreThreshold, classes));
      const prototypes = asNumbers(proto.data);
      return dets.map((d): Instance => {
        const box = tensorBoxToImage(g, d.box);
        if (!withMasks) return { box, score: d.score, classId: d.classId };
        const mask = () => {
          const coefficients = Float64Array.from(
            { length: numMasks },
            (_, m) => data[(4 + classes + m) * anchors + d.anchor],
          );
          return yoloSegMask(coefficients, prototypes, protoW, protoH, box, g, o.mask_threshold);
        };
        return { box, score: d.score, classId: d.classId, mask };
      });
    },
  };
}

export const yoloV8Seg = defineFamily({
  decoder: 'yolov8-seg',
  options: Options,
  detect: (o, setup) => detector(o, setup, false),
  instances: (o, setup) => detector(o, setup, true),
});
