/**
 * Test stand-in for an Ultralytics YOLOv8 export: `images` float32 [N, 3, 640, 640] →
 * `output0` [N, 84, 8400] (cx, cy, w, h in letterbox pixels, then 80 class scores per anchor).
 * Every image gets the same fixed predictions, chosen to exercise the decoder: two overlapping
 * boxes of one class (NMS keeps one), an overlapping box of another class (class-wise NMS
 * keeps it), and one under the default score threshold.
 */
import { OnnxGraphBuilder } from './onnx-builder.js';

export const YOLO_TEST = { input: 'images', output: 'output0', size: 640, classes: 80, anchors: 8400 } as const;

export const YOLO_TEST_PREDICTIONS = [
  { cx: 320, cy: 200, w: 100, h: 80, classId: 0, score: 0.9 },
  { cx: 325, cy: 205, w: 100, h: 80, classId: 0, score: 0.8 }, // suppressed by the first
  { cx: 322, cy: 202, w: 100, h: 80, classId: 2, score: 0.7 }, // another class: kept
  { cx: 100, cy: 500, w: 50, h: 60, classId: 16, score: 0.5 },
  { cx: 500, cy: 500, w: 40, h: 40, classId: 5, score: 0.2 }, // under 0.25
] as const;

/** Anchor slot of prediction i (spread over the grid, like real anchors). */
export const yoloTestAnchor = (i: number): number => 1000 * i + 17;

export function yoloTestGrid(): Float32Array {
  const { classes, anchors } = YOLO_TEST;
  const grid = new Float32Array((4 + classes) * anchors);
  YOLO_TEST_PREDICTIONS.forEach((p, i) => {
    const a = yoloTestAnchor(i);
    grid[a] = p.cx;
    grid[anchors + a] = p.cy;
    grid[2 * anchors + a] = p.w;
    grid[3 * anchors + a] = p.h;
    grid[(4 + p.classId) * anchors + a] = p.score;
    // A weaker second class on the same anchor: the decoder must take the best one.
    grid[(4 + ((p.classId + 1) % classes)) * anchors + a] = p.score / 2;
  });
  return grid;
}

export function buildYoloTestModel(): Uint8Array {
  const { input, output, size, classes, anchors } = YOLO_TEST;
  const g = new OnnxGraphBuilder('yolov8-test');
  g.input(input, 'float32', ['N', 3, size, size]);
  const grid = g.constant('float32', [1, 4 + classes, anchors], yoloTestGrid());
  const batch = g.op('Slice', [g.op('Shape', [input]), g.constant('int64', [1], [0]), g.constant('int64', [1], [1])]);
  const shape = g.op('Concat', [batch, g.constant('int64', [2], [4 + classes, anchors])], { axis: 0 });
  g.op('Expand', [grid, shape], {}, output);
  g.output(output, 'float32', ['N', 4 + classes, anchors]);
  return g.toBytes();
}
