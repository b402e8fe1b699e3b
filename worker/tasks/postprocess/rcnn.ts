/**
 * Two-stage detector outputs as the ONNX-zoo Faster/Mask R-CNN exports give them (already
 * suppressed by the model): boxes [N, 4] x1, y1, x2, y2 in tensor pixels, labels [N], scores [N].
 */
import type { Detection } from './detections.js';

export interface RcnnDetection extends Detection {
  /** Row in the model's outputs (to find its mask). */
  index: number;
}

export function decodeRcnn(boxes: ArrayLike<number>, labels: ArrayLike<number | bigint>, scores: ArrayLike<number>): RcnnDetection[] {
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
