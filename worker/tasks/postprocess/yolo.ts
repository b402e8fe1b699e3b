/**
 * Single-stage detector head as Ultralytics exports it (YOLOv8/v11 `output0`): [4 + C, A]
 * per image, each anchor column = cx, cy, w, h (input-tensor pixels) then C class scores
 * (already sigmoid). No objectness row; suppression is left to the caller (class-wise NMS).
 */
import type { Detection } from './detections.js';
import { classwiseNms, nms } from './nms.js';

export interface YoloParams {
  scoreThreshold: number;
  iouThreshold: number;
  classAgnostic: boolean;
  /** Candidates kept before NMS (best scores), bounding its quadratic cost. */
  maxCandidates: number;
}

/** Decodes one image's [4 + C, A] row-major predictions into boxes in tensor pixels, after NMS. */
export function decodeYolo(data: ArrayLike<number>, rows: number, anchors: number, p: YoloParams): Detection[] {
  const classes = rows - 4;
  if (classes < 1) throw new Error(`YOLO output has ${rows} rows; expected 4 box rows plus at least one class row`);
  const candidates: Detection[] = [];
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
    candidates.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: bestScore, classId: best });
  }
  candidates.sort((x, y) => y.score - x.score);
  const top = candidates.slice(0, p.maxCandidates);
  return p.classAgnostic ? nms(top, p.iouThreshold) : classwiseNms(top, p.iouThreshold);
}
