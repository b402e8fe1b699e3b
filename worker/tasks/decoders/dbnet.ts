/**
 * DBNet family (PaddleOCR DB text detectors): a text probability map [N, 1, H, W].
 * Regions as PaddleOCR's DBPostProcess finds them: binarize the map at `thresh`, take each
 * connected region, fit its minimum-area rectangle, score it by the mean probability inside,
 * drop those under `box_thresh`, then "unclip" (grow by area × ratio / perimeter, undoing the
 * shrink the model was trained with) and fit the rectangle again.
 * Serves detect (one box per region, class `class_id`), instances (mask = the region) and
 * semantic (background / text per pixel).
 */
import { z } from 'zod';
import {
  clampBox,
  contentOfMap,
  imageSampler,
  resamplePlane,
  tensorToImage,
  type Geometry,
  type MapPart,
} from '../geometry.js';
import { asNumbers, itemOutput, requireOutput } from '../outputs.js';
import {
  convexHull,
  expandRect,
  fillConvex,
  forEachInside,
  insideConvex,
  minAreaRect,
  rectCorners,
  type Point,
  type RotatedRect,
} from '../postprocess/polygon.js';
import {
  defineFamily,
  MaxDetections,
  Probability,
  type DecoderSetup,
  type Detector,
  type ModelOutputs,
  type SegmentationMaps,
} from './family.js';

const Options = z.object({
  decoder: z.literal('dbnet'),
  /** Binarization threshold of the probability map. */
  thresh: Probability.default(0.3),
  /** Default score threshold of a region (a request's score_threshold replaces it). */
  box_thresh: Probability.default(0.6),
  unclip_ratio: z.number().positive().default(1.5),
  max_candidates: z.number().int().positive().default(1000),
  /** Regions whose shorter side is under this (map pixels) are noise. */
  min_size: z.number().nonnegative().default(3),
  /** Class id reported for text (line of the labels file). */
  class_id: z.number().int().nonnegative().default(1),
  max_detections: MaxDetections,
});
type DbnetOptions = z.output<typeof Options>;

export interface DbnetParams {
  thresh: number;
  boxThresh: number;
  unclipRatio: number;
  maxCandidates: number;
  minSize: number;
}

const regionParams = (o: DbnetOptions, boxThresh = o.box_thresh): DbnetParams => ({
  thresh: o.thresh,
  boxThresh,
  unclipRatio: o.unclip_ratio,
  maxCandidates: o.max_candidates,
  minSize: o.min_size,
});

export const DBNET_DEFAULTS: DbnetParams = regionParams(Options.parse({ decoder: 'dbnet' }));

export interface TextRegion {
  /** Corners of the unclipped rotated rectangle, in map pixels (continuous: pixel i spans [i, i+1)). */
  quad: Point[];
  /** Mean probability inside the region's (not unclipped) rectangle. */
  score: number;
}

/** 8-connected regions of map > thresh, each as its hull points (pixel centers), in scan order. */
export function textComponents(map: ArrayLike<number>, width: number, height: number, thresh: number): Point[][] {
  const label = new Int32Array(width * height);
  const components: Point[][] = [];
  const stack: number[] = [];
  for (let start = 0; start < map.length; start++) {
    if (label[start] !== 0 || !(map[start] > thresh)) continue;
    const id = components.length + 1;
    // Per row, the leftmost and rightmost pixel: enough for the convex hull.
    const rowMin = new Map<number, number>();
    const rowMax = new Map<number, number>();
    label[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % width;
      const y = (p - x) / width;
      if (!rowMin.has(y) || x < rowMin.get(y)!) rowMin.set(y, x);
      if (!rowMax.has(y) || x > rowMax.get(y)!) rowMax.set(y, x);
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (label[q] === 0 && map[q] > thresh) {
            label[q] = id;
            stack.push(q);
          }
        }
      }
    }
    const points: Point[] = [];
    for (const [y, x0] of rowMin) {
      points.push([x0 + 0.5, y + 0.5]);
      const x1 = rowMax.get(y)!;
      if (x1 !== x0) points.push([x1 + 0.5, y + 0.5]);
    }
    components.push(points);
  }
  return components;
}

/** Mean of the map over pixels whose centers lie inside the convex polygon (PaddleOCR's box_score_fast). */
export function meanInside(map: ArrayLike<number>, width: number, height: number, poly: readonly Point[]): number {
  const xs = poly.map((p) => p[0]);
  const ys = poly.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
  let sum = 0;
  let n = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (insideConvex(poly, x + 0.5, y + 0.5, 1e-6)) {
        sum += map[y * width + x];
        n++;
      }
    }
  }
  return n > 0 ? sum / n : 0;
}

/** Unclip distance of PaddleOCR (pyclipper offset of the rectangle by area × ratio / perimeter). */
export function unclipDistance(r: RotatedRect, ratio: number): number {
  const perimeter = 2 * (r.width + r.height);
  return perimeter > 0 ? (r.width * r.height * ratio) / perimeter : 0;
}

export function dbnetRegions(
  map: ArrayLike<number>,
  width: number,
  height: number,
  params: Partial<DbnetParams> = {},
): TextRegion[] {
  const p = { ...DBNET_DEFAULTS, ...params };
  const regions: TextRegion[] = [];
  const components = textComponents(map, width, height, p.thresh).slice(0, p.maxCandidates);
  for (const points of components) {
    // Like PaddleOCR, the rectangle joins pixel centers (a region n pixels across measures
    // n - 1): min_size and the unclip distance were tuned on that convention.
    const rect = minAreaRect(convexHull(points));
    if (Math.min(rect.width, rect.height) < p.minSize) continue;
    const score = meanInside(map, width, height, rectCorners(rect));
    if (score < p.boxThresh) continue;
    const grown = expandRect(rect, unclipDistance(rect, p.unclipRatio));
    if (Math.min(grown.width, grown.height) < p.minSize + 2) continue;
    regions.push({ quad: rectCorners(grown), score });
  }
  return regions;
}

/**
 * Background (0) / text (1) per image pixel: text inside the text regions, the same unclipped
 * rectangles that detection reports as boxes (the map itself marks only their shrunk kernels).
 * The text probability of a pixel is the map's value, raised to its region's score inside a
 * region and capped at thresh outside every region; `probs` is that of the predicted class.
 */
export function segmentTextRegions(
  map: ArrayLike<number>,
  mapW: number,
  mapH: number,
  g: Geometry,
  regions: readonly TextRegion[],
  thresh: number,
  perClass: boolean,
): SegmentationMaps {
  const { imageWidth: w, imageHeight: h } = g;
  const p = resamplePlane(imageSampler(g, mapW, mapH), map);
  const regionScore = new Float32Array(w * h).fill(-1);
  for (const r of regions) {
    const quad = regionToImage(r, g, mapW, mapH);
    forEachInside(quad, w, h, (x, y) => {
      const i = y * w + x;
      regionScore[i] = Math.max(regionScore[i], r.score);
    });
  }
  const text = Float32Array.from(p, (v, i) =>
    regionScore[i] >= 0 ? Math.max(v, regionScore[i]) : Math.min(v, thresh),
  );
  const preds = Int32Array.from(regionScore, (s) => (s >= 0 ? 1 : 0));
  const probs = Float32Array.from(text, (t, i) => (preds[i] ? t : 1 - t));
  return {
    width: w,
    height: h,
    numClasses: 2,
    preds,
    probs,
    perClass: perClass ? [Float32Array.from(text, (t) => 1 - t), text] : undefined,
  };
}

/** A region's rectangle (map pixels) in input-image pixels, unclamped. */
function regionToImage(r: TextRegion, g: Geometry, mapW: number, mapH: number): Point[] {
  return r.quad.map(([x, y]) => tensorToImage(g, (x * g.tensorWidth) / mapW, (y * g.tensorHeight) / mapH));
}

/** Item `index`'s probability map, only the part that covers its image (padding cropped off). */
function probabilityMap(o: DbnetOptions, { ctx, batched }: DecoderSetup) {
  const name = requireOutput(ctx, 'probability_map', 'the dbnet decoder reads a [N, 1, H, W] text probability map');
  return (outputs: ModelOutputs, index: number, g: Geometry): MapPart => {
    const { data, dims } = itemOutput(outputs, name, index, batched);
    const [height, width] = dims.slice(-2);
    return contentOfMap(g, asNumbers(data), width, height);
  };
}

function detector(o: DbnetOptions, setup: DecoderSetup): Detector {
  const read = probabilityMap(o, setup);
  return {
    scoreThreshold: o.box_thresh,
    maxDetections: o.max_detections,
    labelOffset: 0,
    decode(outputs, index, tensorGeometry, scoreThreshold) {
      const { map, width: mapW, height: mapH, geometry: g } = read(outputs, index, tensorGeometry);
      return dbnetRegions(map, mapW, mapH, regionParams(o, scoreThreshold)).map((r) => {
        const quad = regionToImage(r, g, mapW, mapH);
        const xs = quad.map((p) => p[0]);
        const ys = quad.map((p) => p[1]);
        const box = clampBox(g, [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]);
        return { box, score: r.score, classId: o.class_id, mask: () => fillConvex(quad, g.imageWidth, g.imageHeight) };
      });
    },
  };
}

export const dbnet = defineFamily({
  decoder: 'dbnet',
  options: Options,
  detect: detector,
  instances: detector,
  semantic(o, setup) {
    const read = probabilityMap(o, setup);
    return {
      segment(outputs, index, tensorGeometry, perClass) {
        const { map, width, height, geometry: g } = read(outputs, index, tensorGeometry);
        return segmentTextRegions(
          map,
          width,
          height,
          g,
          dbnetRegions(map, width, height, regionParams(o)),
          o.thresh,
          perClass,
        );
      },
    };
  },
});
