/** The YOLOv8-seg family on outputs whose right answers are worked out by hand. */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModel } from '../../shared/manifest.js';
import { buildDetector, detectionsFor } from '../../worker/tasks/decoders/index.js';
import { decodeYoloAnchors } from '../../worker/tasks/decoders/yolo.js';
import { yoloSegMask } from '../../worker/tasks/decoders/yolov8-seg.js';
import type { Geometry } from '../../worker/tasks/geometry.js';

/** Image 16 × 16 fed as is to a 16 × 16 tensor. */
const identity: Geometry = {
  imageWidth: 16,
  imageHeight: 16,
  tensorWidth: 16,
  tensorHeight: 16,
  scaleX: 1,
  scaleY: 1,
  padLeft: 0,
  padTop: 0,
  cropLeft: 0,
  cropTop: 0,
  contentWidth: 16,
  contentHeight: 16,
};

/** Two 4 × 4 prototypes (one cell = 4 × 4 tensor pixels): the first +10 on the left half, -10 on the right; the second -10 everywhere. */
const prototypes = Float32Array.from({ length: 2 * 16 }, (_, i) => (i >= 16 ? -10 : i % 4 < 2 ? 10 : -10));

const ones = (m: Uint8Array) => m.reduce((a, v) => a + v, 0);
const columns = (m: Uint8Array, w: number) =>
  [...new Set([...m.keys()].filter((i) => m[i]).map((i) => i % w))].sort((a, b) => a - b);

describe('YOLOv8-seg masks', () => {
  it('is sigmoid(coefficients · prototypes), upsampled bilinearly and cut to the box', () => {
    // Pixel 7's center reads cell 1.375: 0.625 of the +10 side → set; pixel 8 reads 1.625 → not.
    const mask = yoloSegMask([1, 0], prototypes, 4, 4, [0, 0, 12, 16], identity, 0.5);
    expect(columns(mask, 16)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ones(mask)).toBe(8 * 16);
    // The box cuts it: rows 4..11 and columns 2..5 only.
    const cut = yoloSegMask([1, 0], prototypes, 4, 4, [2, 4, 6, 12], identity, 0.5);
    expect(ones(cut)).toBe(4 * 8);
    expect(columns(cut, 16)).toEqual([2, 3, 4, 5]);
    // The second prototype outweighs the first: nothing.
    expect(ones(yoloSegMask([1, 2], prototypes, 4, 4, [0, 0, 16, 16], identity, 0.5))).toBe(0);
  });
});

describe('YOLOv8-seg decoding', () => {
  const anchors = 3;
  const classes = 2;
  const rows = 4 + classes + 2;
  /** Anchor columns: cx, cy, w, h, 2 class scores, 2 coefficients (large, to catch them read as classes). */
  const head = new Float32Array(rows * anchors);
  const put = (a: number, values: number[]) => values.forEach((v, r) => (head[r * anchors + a] = v));
  put(0, [4, 8, 8, 16, 0.9, 0.1, 1, 0]); // left object, class 0
  put(1, [5, 8, 8, 16, 0.8, 0.1, 1, 0]); // same class, overlapping: suppressed
  put(2, [12, 8, 8, 16, 0.05, 0.7, 0, 1]); // right box, class 1; its coefficients pick the second prototype

  it("reads class rows only (not the coefficient rows) and keeps each detection's anchor", () => {
    const dets = decodeYoloAnchors(head, rows, anchors, {
      scoreThreshold: 0.25,
      iouThreshold: 0.45,
      classAgnostic: false,
      maxCandidates: 10,
      classes,
    });
    expect(dets.map((d) => [d.anchor, d.classId, d.score])).toEqual([
      [0, 0, expect.closeTo(0.9, 6)],
      [2, 1, expect.closeTo(0.7, 6)],
    ]);
  });

  it('answers boxes in image pixels and lazily computed masks, through the family registry', () => {
    const base = loadModel('models/yolov8-seg', loadConfig({}));
    const entry = {
      ...base,
      manifest: {
        ...base.manifest,
        preprocess: { ...base.manifest.preprocess, resize: { mode: 'letterbox', width: 16, height: 16 } },
      },
    };
    const ctx = {
      entry,
      session: { inputNames: ['images'], outputNames: ['output0', 'output1'] },
      options: taskOptions(loadConfig({})),
    };
    const detector = buildDetector(ctx, true, 'instances');
    const outputs = {
      output0: new ort.Tensor('float32', head, [1, rows, anchors]),
      output1: new ort.Tensor('float32', prototypes, [1, 2, 4, 4]),
    };
    const dets = detectionsFor(detector, outputs, 0, { geometry: identity, options: {} });
    expect(dets.map((d) => [d.classId, d.box])).toEqual([
      [0, [0, 0, 8, 16]],
      [1, [8, 0, 16, 16]],
    ]);
    expect(columns(dets[0].mask!(), 16)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ones(dets[1].mask!())).toBe(0);
    // A request's threshold and count apply as for every detector.
    expect(detectionsFor(detector, outputs, 0, { geometry: identity, options: { score_threshold: 0.8 } })).toHaveLength(
      1,
    );
    expect(() =>
      buildDetector(
        { ...ctx, entry: { ...entry, manifest: { ...entry.manifest, outputs: { predictions: 'output0' } } } },
        true,
        'instances',
      ),
    ).toThrow(/outputs\.prototypes/);
  });
});
