/** Intersection over union and (class-wise) non-maximum suppression over [x1, y1, x2, y2] boxes. */
import type { Box } from '../geometry.js';
import type { Detection } from './detections.js';

export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  return inter / (areaA + areaB - inter);
}

/** Greedy NMS: best first, dropping any box overlapping a kept one by more than iouThreshold. */
export function nms<D extends Detection>(dets: readonly D[], iouThreshold: number): D[] {
  const order = [...dets].sort((a, b) => b.score - a.score);
  const kept: D[] = [];
  for (const d of order) {
    if (kept.every((k) => iou(k.box, d.box) <= iouThreshold)) kept.push(d);
  }
  return kept;
}

/** NMS within each class only: boxes of different classes never suppress each other. */
export function classwiseNms<D extends Detection>(dets: readonly D[], iouThreshold: number): D[] {
  const byClass = new Map<number, D[]>();
  for (const d of dets) byClass.set(d.classId, [...(byClass.get(d.classId) ?? []), d]);
  return [...byClass.values()].flatMap((group) => nms(group, iouThreshold)).sort((a, b) => b.score - a.score);
}
