/** Pure postprocessing of the vision tasks, on outputs whose right answers are computed by hand. */
import { describe, expect, it } from 'vitest';
import { dbnetRegions, unclipDistance } from '../../worker/tasks/decoders/dbnet.js';
import { decodeRcnn } from '../../worker/tasks/decoders/rcnn.js';
import { segmentLogits } from '../../worker/tasks/decoders/torchvision-seg.js';
import { decodeYolo } from '../../worker/tasks/decoders/yolo.js';
import { imageSampler, resamplePlane, tensorBoxToImage, type Geometry } from '../../worker/tasks/geometry.js';
import { detectionFields, selectDetections, type Detection } from '../../worker/tasks/postprocess/detections.js';
import {
  decodePng,
  decodeRle,
  encodeRle,
  maskToPng,
  probsToPng,
} from '../../worker/tasks/postprocess/mask-encoding.js';
import { pasteMask } from '../../worker/tasks/postprocess/masks.js';
import { classwiseNms, iou, nms } from '../../worker/tasks/postprocess/nms.js';
import { convexHull, fillConvex, minAreaRect, type Point } from '../../worker/tasks/postprocess/polygon.js';

const det = (box: [number, number, number, number], score: number, classId = 0): Detection => ({ box, score, classId });

describe('iou and nms', () => {
  it('computes intersection over union', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
  });

  it('keeps the best of overlapping boxes and leaves separate ones', () => {
    const kept = nms([det([0, 0, 10, 10], 0.8), det([1, 1, 11, 11], 0.9), det([20, 20, 30, 30], 0.5)], 0.5);
    expect(kept.map((d) => d.score)).toEqual([0.9, 0.5]);
  });

  it('suppresses within a class only', () => {
    const dets = [det([0, 0, 10, 10], 0.9, 1), det([1, 1, 11, 11], 0.8, 1), det([1, 1, 11, 11], 0.7, 2)];
    expect(classwiseNms(dets, 0.5).map((d) => [d.classId, d.score])).toEqual([
      [1, 0.9],
      [2, 0.7],
    ]);
    expect(nms(dets, 0.5)).toHaveLength(1);
  });

  it('keeps a pair whose overlap is exactly at the threshold', () => {
    // IoU of these two is 1/3: suppressed only above the threshold.
    const dets = [det([0, 0, 10, 10], 0.9), det([5, 0, 15, 10], 0.8)];
    expect(nms(dets, 1 / 3 + 1e-9)).toHaveLength(2);
    expect(nms(dets, 0.3)).toHaveLength(1);
  });
});

describe('detections to spec fields', () => {
  it('orders boxes as [y1, x1, y2, x2] and names classes through the label offset', () => {
    const fields = detectionFields([det([10, 20, 30, 40], 0.9, 1)], ['person', 'bicycle'], 1);
    expect(fields).toEqual({
      detection_boxes: [[20, 10, 40, 30]],
      detection_scores: [0.9],
      detection_classes: [1],
      detection_class_names: ['person'],
    });
  });

  it('filters by score, sorts best first and caps the count', () => {
    const dets = [det([0, 0, 1, 1], 0.3), det([0, 0, 1, 1], 0.9), det([0, 0, 1, 1], 0.6), det([0, 0, 1, 1], 0.5)];
    expect(selectDetections(dets, { scoreThreshold: 0.5, maxDetections: 2 }).map((d) => d.score)).toEqual([0.9, 0.6]);
  });

  it('maps letterboxed tensor boxes back to image pixels', () => {
    // 800×400 image letterboxed into 640×640: scale 0.8, 160 px of padding on top.
    const g: Geometry = {
      imageWidth: 800,
      imageHeight: 400,
      tensorWidth: 640,
      tensorHeight: 640,
      scaleX: 0.8,
      scaleY: 0.8,
      padLeft: 0,
      padTop: 160,
      cropLeft: 0,
      cropTop: 0,
      contentWidth: 640,
      contentHeight: 320,
    };
    expect(tensorBoxToImage(g, [80, 200, 160, 240])).toEqual([100, 50, 200, 100]);
    // Clamped to the image where the box runs into the padding.
    expect(tensorBoxToImage(g, [-10, 100, 700, 500])).toEqual([0, 0, 800, 400]);
  });
});

describe('decoders', () => {
  it('decodes a YOLO grid: best class per anchor, threshold, class-wise NMS', () => {
    const anchors = 4;
    const rows = 4 + 2;
    const grid = new Float32Array(rows * anchors);
    const put = (a: number, cx: number, cy: number, w: number, h: number, s0: number, s1: number) =>
      [cx, cy, w, h, s0, s1].forEach((v, r) => (grid[r * anchors + a] = v));
    put(0, 50, 50, 20, 10, 0.9, 0.1);
    put(1, 51, 50, 20, 10, 0.8, 0.2); // same class, overlaps anchor 0
    put(2, 50, 51, 20, 10, 0.1, 0.6); // class 1
    put(3, 10, 10, 4, 4, 0.2, 0.1); // under threshold
    const dets = decodeYolo(grid, rows, anchors, {
      scoreThreshold: 0.25,
      iouThreshold: 0.45,
      classAgnostic: false,
      maxCandidates: 100,
    });
    expect(dets).toEqual([
      { box: [40, 45, 60, 55], score: expect.closeTo(0.9, 6), classId: 0 },
      { box: [40, 46, 60, 56], score: expect.closeTo(0.6, 6), classId: 1 },
    ]);
    const agnostic = decodeYolo(grid, rows, anchors, {
      scoreThreshold: 0.25,
      iouThreshold: 0.45,
      classAgnostic: true,
      maxCandidates: 100,
    });
    expect(agnostic).toHaveLength(1);
  });

  it('decodes R-CNN outputs row by row, int64 labels included', () => {
    const dets = decodeRcnn(
      Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
      BigInt64Array.from([3n, 1n]),
      Float32Array.from([0.5, 0.75]),
    );
    expect(dets).toEqual([
      { box: [1, 2, 3, 4], score: 0.5, classId: 3, index: 0 },
      { box: [5, 6, 7, 8], score: 0.75, classId: 1, index: 1 },
    ]);
    expect(() => decodeRcnn([1, 2, 3, 4], [1, 2], [0.5])).toThrow(/disagree/);
  });
});

describe('DBNet regions', () => {
  function map(width: number, height: number, rects: Array<[number, number, number, number, number]>): Float32Array {
    const m = new Float32Array(width * height);
    for (const [x0, y0, x1, y1, v] of rects)
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[y * width + x] = v;
    return m;
  }

  it('finds a region, scores it and unclips it by area × ratio / perimeter', () => {
    // Pixels x 10..29, y 5..12: centers span 19 × 7; unclip distance 19·7·1.5 / (2·26).
    const regions = dbnetRegions(map(40, 20, [[10, 5, 29, 12, 0.9]]), 40, 20);
    expect(regions).toHaveLength(1);
    const d = (19 * 7 * 1.5) / 52;
    const xs = regions[0].quad.map((p) => p[0]);
    const ys = regions[0].quad.map((p) => p[1]);
    expect(Math.min(...xs)).toBeCloseTo(10.5 - d, 5);
    expect(Math.max(...xs)).toBeCloseTo(29.5 + d, 5);
    expect(Math.min(...ys)).toBeCloseTo(5.5 - d, 5);
    expect(Math.max(...ys)).toBeCloseTo(12.5 + d, 5);
    expect(regions[0].score).toBeCloseTo(0.9, 5);
  });

  it('drops weak, tiny and sub-threshold regions and keeps separate ones apart', () => {
    const m = map(60, 30, [
      [2, 2, 20, 8, 0.95],
      [30, 2, 50, 8, 0.45], // above thresh 0.3 but scores under box_thresh 0.6
      [2, 20, 3, 21, 0.99], // 2×2: shorter side under min_size
      [30, 20, 50, 26, 0.2], // under thresh: not text at all
    ]);
    const regions = dbnetRegions(m, 60, 30);
    expect(regions).toHaveLength(1);
    expect(regions[0].score).toBeCloseTo(0.95, 5);
    expect(dbnetRegions(m, 60, 30, { boxThresh: 0.4 })).toHaveLength(2);
  });

  it('fits rotated rectangles to rotated regions', () => {
    const angle = (30 * Math.PI) / 180;
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    const pts: Point[] = [];
    for (let u = 0; u <= 10; u++) for (let v = 0; v <= 4; v++) pts.push([50 + u * c - v * s, 50 + u * s + v * c]);
    const r = minAreaRect(convexHull(pts));
    expect([r.width, r.height].sort((a, b) => a - b)).toEqual([expect.closeTo(4, 6), expect.closeTo(10, 6)]);
    expect(unclipDistance(r, 1.5)).toBeCloseTo((40 * 1.5) / 28, 6);
  });

  it('rasterizes a polygon by pixel centers', () => {
    const m = fillConvex(
      [
        [1, 1],
        [4, 1],
        [4, 3],
        [1, 3],
      ],
      6,
      5,
    );
    expect(Array.from(m).reduce((a, b) => a + b, 0)).toBe(6);
    expect(m[1 * 6 + 1]).toBe(1);
    expect(m[3 * 6 + 1]).toBe(0);
  });
});

describe('mask pasting', () => {
  const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);
  const set = (m: Uint8Array, w: number) =>
    Array.from(m.entries())
      .filter(([, v]) => v)
      .map(([i]) => [i % w, Math.floor(i / w)]);

  it('fills the box where the mask is on', () => {
    const m = pasteMask([0.9, 0.9, 0.9, 0.9], 2, 2, [2, 2, 6, 6], 10, 10);
    expect(count(m)).toBe(16);
    expect(set(m, 10).every(([x, y]) => x >= 2 && x < 6 && y >= 2 && y < 6)).toBe(true);
  });

  it('keeps the mask orientation (left half on → left columns)', () => {
    const m = pasteMask([0.9, 0.1, 0.9, 0.1], 2, 2, [2, 2, 6, 6], 10, 10);
    expect(new Set(set(m, 10).map(([x]) => x))).toEqual(new Set([2, 3]));
    expect(count(m)).toBe(8);
  });

  it('cuts boxes at the image borders', () => {
    const m = pasteMask([0.9, 0.9, 0.9, 0.9], 2, 2, [-3, 7, 4, 14], 10, 10);
    expect(count(m)).toBe(4 * 3);
    expect(set(m, 10).every(([x, y]) => x <= 3 && y >= 7)).toBe(true);
    // A box entirely outside gives an empty mask.
    expect(count(pasteMask([1, 1, 1, 1], 2, 2, [12, 12, 20, 20], 10, 10))).toBe(0);
  });

  it('applies the threshold strictly', () => {
    expect(count(pasteMask([0.5, 0.5, 0.5, 0.5], 2, 2, [0, 0, 4, 4], 4, 4, 0.5))).toBe(0);
  });
});

describe('mask encodings', () => {
  const mask = Uint8Array.from([0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1]); // 4 wide, 3 high

  it('writes COCO RLE column-major, starting with zeros', () => {
    // Columns: [0,1,0] [1,0,0] [1,0,1] [0,0,1] → 0 1 0 1 0 0 1 0 1 0 0 1.
    expect(encodeRle(mask, 4, 3)).toEqual({ size: [3, 4], counts: [1, 1, 1, 1, 2, 1, 1, 1, 2, 1] });
    expect(encodeRle(new Uint8Array(6).fill(1), 3, 2)).toEqual({ size: [2, 3], counts: [0, 6] });
    expect(Array.from(decodeRle(encodeRle(mask, 4, 3)))).toEqual(Array.from(mask));
  });

  it('round-trips masks and probabilities through PNG', async () => {
    const png = await maskToPng(mask, 4, 3);
    expect(png.size).toEqual([3, 4]);
    expect(Array.from(await decodePng(png))).toEqual(Array.from(mask, (v) => v * 255));
    const probs = await probsToPng([0, 0.25, 0.5, 1], 2, 2);
    const back = Array.from(await decodePng(probs), (v) => v * probs.scale!);
    back.forEach((v, i) => expect(v).toBeCloseTo([0, 0.25, 0.5, 1][i], 4));
  });
});

describe('resampling maps to the input image', () => {
  it('reads the content area of a letterboxed map, never its padding', () => {
    // Image 4×2 letterboxed into 4×4: rows 1..2 hold the image, rows 0 and 3 are padding (value 9).
    const g: Geometry = {
      imageWidth: 4,
      imageHeight: 2,
      tensorWidth: 4,
      tensorHeight: 4,
      scaleX: 1,
      scaleY: 1,
      padLeft: 0,
      padTop: 1,
      cropLeft: 0,
      cropTop: 0,
      contentWidth: 4,
      contentHeight: 2,
    };
    const map = Float32Array.from([9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]);
    expect(Array.from(resamplePlane(imageSampler(g, 4, 4), map))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('takes softmax and argmax of resampled logits', () => {
    const g: Geometry = {
      imageWidth: 2,
      imageHeight: 1,
      tensorWidth: 2,
      tensorHeight: 1,
      scaleX: 1,
      scaleY: 1,
      padLeft: 0,
      padTop: 0,
      cropLeft: 0,
      cropTop: 0,
      contentWidth: 2,
      contentHeight: 1,
    };
    // Two classes over two pixels: pixel 0 favours class 1 (logits 0, 2), pixel 1 class 0 (3, 1).
    const seg = segmentLogits(Float32Array.from([0, 3, 2, 1]), 2, 2, 1, g, true);
    expect(Array.from(seg.preds)).toEqual([1, 0]);
    const p = 1 / (1 + Math.exp(-2));
    expect(seg.probs[0]).toBeCloseTo(p, 6);
    expect(seg.probs[1]).toBeCloseTo(p, 6);
    expect(seg.perClass![0][0]).toBeCloseTo(1 - p, 6);
  });
});
