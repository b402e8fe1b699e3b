/**
 * Detections as every decoder produces them (x1, y1, x2, y2 in input-image pixels), and their
 * conversion to the spec's fields, where boxes are [y1, x1, y2, x2].
 */
import { labelOf, type ModelEntry } from '../../../shared/manifest.js';
import type { Box } from '../geometry.js';

export interface Detection {
  box: Box;
  score: number;
  classId: number;
}

export interface Selection {
  scoreThreshold: number;
  maxDetections: number;
}

/** Keeps detections scoring at least the threshold, best first, at most maxDetections. */
export function selectDetections<D extends Detection>(dets: readonly D[], sel: Selection): D[] {
  return dets
    .filter((d) => d.score >= sel.scoreThreshold)
    .sort((a, b) => b.score - a.score)
    .slice(0, sel.maxDetections);
}

export interface DetectionFields {
  detection_boxes: number[][];
  detection_scores: number[];
  detection_classes: number[];
  detection_class_names: string[];
}

/** The spec's §1.2 fields; `labelOffset` maps a model's class id to its labels-file line (R-CNN: id 1 is line 0). */
export function detectionFields(
  dets: readonly Detection[],
  labels: ModelEntry['labels'],
  labelOffset = 0,
): DetectionFields {
  return {
    detection_boxes: dets.map((d) => [d.box[1], d.box[0], d.box[3], d.box[2]]),
    detection_scores: dets.map((d) => d.score),
    detection_classes: dets.map((d) => d.classId),
    detection_class_names: dets.map((d) => labelOf(labels, d.classId - labelOffset)),
  };
}
