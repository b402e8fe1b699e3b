/**
 * YOLO family: single-stage detector heads as Ultralytics exports them (YOLOv8/v11 `output0`):
 * [4 + C, A] per image, each anchor column = cx, cy, w, h (input-tensor pixels) then C class
 * scores (already sigmoid). No objectness row and no suppression in the model: class-wise NMS
 * here. Serves detect.
 */
import { z } from 'zod';
import { tensorBoxToImage } from '../geometry.js';
import { asNumbers, itemOutput, requireOutput } from '../outputs.js';
import type { Detection } from '../postprocess/detections.js';
import { classwiseNms, nms } from '../postprocess/nms.js';
import { defineFamily, MaxDetections, Probability } from './family.js';

export const YoloOptions = z.object({
  decoder: z.literal('yolo'),
  score_threshold: Probability.default(0.25),
  iou_threshold: Probability.default(0.45),
  class_agnostic: z.boolean().default(false),
  /** Candidates kept before NMS (best scores), bounding its quadratic cost. */
  max_candidates: z.number().int().positive().default(3000),
  label_offset: z.number().int().default(0),
  max_detections: MaxDetections,
});

export interface YoloParams {
  scoreThreshold: number;
  iouThreshold: number;
  classAgnostic: boolean;
  /** Candidates kept before NMS (best scores), bounding its quadratic cost. */
  maxCandidates: number;
  /** Class rows after the 4 box rows; default: all the rest (segmentation heads add coefficient rows after them). */
  classes?: number;
}

export interface YoloDetection extends Detection {
  /** The anchor column it came from (to read its mask coefficients). */
  anchor: number;
}

/** Decodes one image's [4 + C, A] row-major predictions into boxes in tensor pixels, after NMS. */
export function decodeYolo(data: ArrayLike<number>, rows: number, anchors: number, p: YoloParams): Detection[] {
  return decodeYoloAnchors(data, rows, anchors, p).map(({ box, score, classId }) => ({ box, score, classId }));
}

/** decodeYolo, keeping each detection's anchor column. */
export function decodeYoloAnchors(
  data: ArrayLike<number>,
  rows: number,
  anchors: number,
  p: YoloParams,
): YoloDetection[] {
  const classes = p.classes ?? rows - 4;
  if (classes < 1 || classes > rows - 4)
    throw new Error(`YOLO output has ${rows} rows; expected 4 box rows plus at least one class row`);
  const candidates: YoloDetection[] = [];
  for (let a = 0; a < anchors; a++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = data[(4 + c) * anchors + a];
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    if (bestScore < p.scoreThreshold) continue;
    const cx = data[a];
    const cy = data[anchors + a];
    const w = data[2 * anchors + a];
    const h = data[3 * anchors + a];
    candidates.push({
      box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
      score: bestScore,
      classId: best,
      anchor: a,
    });
  }
  candidates.sort((x, y) => y.score - x.score);
  const top = candidates.slice(0, p.maxCandidates);
  return p.classAgnostic ? nms(top, p.iouThreshold) : classwiseNms(top, p.iouThreshold);
}

type YoloOptionsT = Omit<z.output<typeof YoloOptions>, 'decoder'>;

/** A YOLO detector's defaults (a request's score_threshold and max_detections replace them). */
export const yoloDefaults = (o: YoloOptionsT) => ({
  scoreThreshold: o.score_threshold,
  maxDetections: o.max_detections,
  labelOffset: o.label_offset,
});

export const yoloParams = (o: YoloOptionsT, scoreThreshold: number, classes?: number): YoloParams => ({
  scoreThreshold,
  iouThreshold: o.iou_threshold,
  classAgnostic: o.class_agnostic,
  maxCandidates: o.max_candidates,
  classes,
});

export const yolo = defineFamily({
  decoder: 'yolo',
  options: YoloOptions,
  detect(o, { ctx, batched }) {
    const predName = requireOutput(ctx, 'predictions', 'the yolo decoder reads [N, 4 + classes, anchors]');
    return {
      ...yoloDefaults(o),
      decode(outputs, index, g, scoreThreshold) {
        const { data, dims } = itemOutput(outputs, predName, index, batched);
        const [rows, anchors] = dims.slice(-2);
        const dets = decodeYolo(asNumbers(data), rows, anchors, yoloParams(o, scoreThreshold));
        return dets.map((d) => ({ ...d, box: tensorBoxToImage(g, d.box) }));
      },
    };
  },
});
