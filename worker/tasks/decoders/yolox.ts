/**
 * YOLOX family (Megvii YOLOX exports without the decode baked in): `output` [A, 5 + C] per image,
 * one row per anchor point of the stride-8/16/32 grids (row-major, finest grid first): cx, cy, w, h
 * in grid units (raw), objectness, then C class scores (objectness and classes already sigmoid).
 * Decode: xy = (xy + grid) × stride, wh = exp(wh) × stride; score = objectness × class score;
 * class-wise NMS here. Boxes come out in tensor pixels and map back through the geometry
 * (YOLOX letterboxes at the top-left: manifest `anchor: "top-left"`). Serves detect.
 */
import { z } from 'zod';
import { tensorBoxToImage } from '../geometry.js';
import { asNumbers, itemOutput, manifestProblem, requireOutput } from '../outputs.js';
import type { Detection } from '../postprocess/detections.js';
import { classwiseNms, nms } from '../postprocess/nms.js';
import { defineFamily, MaxDetections, Probability } from './family.js';

export const YoloxOptions = z.object({
  decoder: z.literal('yolox'),
  score_threshold: Probability.default(0.3),
  iou_threshold: Probability.default(0.45),
  class_agnostic: z.boolean().default(false),
  /** The head's strides, finest first: their grids, in this order, are the output's rows. */
  strides: z.array(z.number().int().positive()).min(1).default([8, 16, 32]),
  /** Candidates kept before NMS (best scores), bounding its quadratic cost. */
  max_candidates: z.number().int().positive().default(3000),
  max_detections: MaxDetections,
});

export interface YoloxParams {
  scoreThreshold: number;
  iouThreshold: number;
  classAgnostic: boolean;
  maxCandidates: number;
  strides: readonly number[];
}

/** Anchor points of the stride grids over a tensor of width × height: [gridX, gridY, stride] per row. */
export function yoloxGrid(width: number, height: number, strides: readonly number[]): Int32Array {
  const cells = strides.map((s) => Math.floor(width / s) * Math.floor(height / s));
  const grid = new Int32Array(3 * cells.reduce((a, b) => a + b, 0));
  let o = 0;
  for (const s of strides) {
    const gw = Math.floor(width / s);
    const gh = Math.floor(height / s);
    for (let y = 0; y < gh; y++) {
      for (let x = 0; x < gw; x++, o += 3) {
        grid[o] = x;
        grid[o + 1] = y;
        grid[o + 2] = s;
      }
    }
  }
  return grid;
}

/** One image's raw [A, 5 + C] rows → detections in tensor pixels, after NMS. */
export function decodeYolox(
  data: ArrayLike<number>,
  anchors: number,
  columns: number,
  grid: Int32Array,
  p: YoloxParams,
): Detection[] {
  const classes = columns - 5;
  if (classes < 1) throw new Error(`YOLOX output has ${columns} columns; expected 5 + at least one class`);
  if (grid.length !== 3 * anchors)
    throw new Error(`YOLOX output has ${anchors} anchors; strides ${p.strides.join('/')} give ${grid.length / 3}`);
  const candidates: Detection[] = [];
  for (let a = 0; a < anchors; a++) {
    const row = a * columns;
    const objectness = data[row + 4];
    if (objectness < p.scoreThreshold) continue; // score = objectness × class ≤ objectness
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = data[row + 5 + c];
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    const score = objectness * bestScore;
    if (score < p.scoreThreshold) continue;
    const stride = grid[3 * a + 2];
    const cx = (data[row] + grid[3 * a]) * stride;
    const cy = (data[row + 1] + grid[3 * a + 1]) * stride;
    const w = Math.exp(data[row + 2]) * stride;
    const h = Math.exp(data[row + 3]) * stride;
    candidates.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score, classId: best });
  }
  candidates.sort((x, y) => y.score - x.score);
  const top = candidates.slice(0, p.maxCandidates);
  return p.classAgnostic ? nms(top, p.iouThreshold) : classwiseNms(top, p.iouThreshold);
}

export const yolox = defineFamily({
  decoder: 'yolox',
  options: YoloxOptions,
  detect(o, { ctx, batched }) {
    const predName = requireOutput(ctx, 'predictions', 'the yolox decoder reads [N, anchors, 5 + classes]');
    if (!batched) throw manifestProblem(ctx, 'the yolox decoder reads batched outputs: preprocess.layout "NCHW"');
    const grids = new Map<string, Int32Array>();
    return {
      scoreThreshold: o.score_threshold,
      maxDetections: o.max_detections,
      labelOffset: 0,
      decode(outputs, index, g, scoreThreshold) {
        const { data, dims } = itemOutput(outputs, predName, index, batched);
        const [anchors, columns] = dims.slice(-2);
        const key = `${g.tensorWidth}x${g.tensorHeight}`;
        let grid = grids.get(key);
        if (!grid) grids.set(key, (grid = yoloxGrid(g.tensorWidth, g.tensorHeight, o.strides)));
        const dets = decodeYolox(asNumbers(data), anchors, columns, grid, {
          scoreThreshold,
          iouThreshold: o.iou_threshold,
          classAgnostic: o.class_agnostic,
          maxCandidates: o.max_candidates,
          strides: o.strides,
        });
        return dets.map((d) => ({ ...d, box: tensorBoxToImage(g, d.box) }));
      },
    };
  },
});
