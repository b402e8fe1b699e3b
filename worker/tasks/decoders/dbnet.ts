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
  forEachRowSpan,
  minAreaRect,
  rectCorners,
  type Point,
  type RotatedRect,
} from '../postprocess/polygon.js';
import { thresholdComponents } from '../postprocess/components.js';
import { tensorBuffers } from '../../backend/tensor-buffers.js';
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
  return thresholdComponents(map, width, height, thresh).map((c) => c.points);
}

/**
 * Mean of the map over pixels whose centers lie inside the convex polygon (PaddleOCR's
 * box_score_fast), summed row span by row span.
 */
export function meanInside(map: ArrayLike<number>, width: number, height: number, poly: readonly Point[]): number {
  let sum = 0;
  let n = 0;
  forEachRowSpan(
    poly,
    width,
    height,
    (y, first, last) => {
      const row = y * width;
      for (let x = first; x <= last; x++) sum += map[row + x];
      n += last - first + 1;
    },
    0.5,
    1e-6,
  );
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
  // Regions come from one pass over the map; each is then fitted and scored from its own pixels.
  for (const { points } of thresholdComponents(map, width, height, p.thresh, p.maxCandidates)) {
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
    const score = r.score;
    forEachRowSpan(regionToImage(r, g, mapW, mapH), w, h, (y, first, last) => {
      for (let i = y * w + first, end = y * w + last; i <= end; i++) if (regionScore[i] < score) regionScore[i] = score;
    });
  }
  const n = w * h;
  const text = new Float32Array(n);
  const preds = new Int32Array(n);
  const probs = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = regionScore[i];
    const v = p[i];
    if (s >= 0) {
      const t = Math.max(v, s);
      text[i] = t;
      preds[i] = 1;
      probs[i] = t;
    } else {
      text[i] = Math.min(v, thresh);
      probs[i] = 1 - text[i]; // from the stored (float32) value, as before
    }
  }
  let background: Float32Array | undefined;
  if (perClass) {
    background = new Float32Array(n);
    for (let i = 0; i < n; i++) background[i] = 1 - text[i];
  }
  return { width: w, height: h, numClasses: 2, preds, probs, perClass: background ? [background, text] : undefined };
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

/** A text region found in a thread: its box and its quad (for the mask), in image pixels. */
export interface TextDetection {
  box: [number, number, number, number];
  score: number;
  quad: Point[];
}

/** Item's text regions in image pixels, from its whole map (padding cropped here): the decode, wherever it runs. */
export function dbnetDetections(
  data: ArrayLike<number>,
  width: number,
  height: number,
  tensorGeometry: Geometry,
  params: DbnetParams,
): TextDetection[] {
  const { map, width: mapW, height: mapH, geometry: g } = contentOfMap(tensorGeometry, data, width, height);
  return dbnetRegions(map, mapW, mapH, params).map((r) => {
    const quad = regionToImage(r, g, mapW, mapH);
    const xs = quad.map((p) => p[0]);
    const ys = quad.map((p) => p[1]);
    const box = clampBox(g, [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]);
    return { box, score: r.score, quad };
  });
}

function detector(o: DbnetOptions, { ctx, batched }: DecoderSetup): Detector {
  const name = requireOutput(ctx, 'probability_map', 'the dbnet decoder reads a [N, 1, H, W] text probability map');
  const toInstances = (found: readonly TextDetection[], g: Geometry) =>
    found.map(({ box, score, quad }) => ({
      box,
      score,
      classId: o.class_id,
      mask: () => fillConvex(quad, g.imageWidth, g.imageHeight),
    }));
  return {
    scoreThreshold: o.box_thresh,
    maxDetections: o.max_detections,
    labelOffset: 0,
    decode(outputs, index, tensorGeometry, scoreThreshold) {
      const { data, dims } = itemOutput(outputs, name, index, batched);
      const [height, width] = dims.slice(-2);
      const params = regionParams(o, scoreThreshold);
      return toInstances(dbnetDetections(asNumbers(data), width, height, tensorGeometry, params), tensorGeometry);
    },
    offload: {
      pixels(outputs, index) {
        const [height, width] = itemOutput(outputs, name, index, batched).dims.slice(-2);
        return width * height;
      },
      job(outputs, index, tensorGeometry, scoreThreshold) {
        const { data, dims } = itemOutput(outputs, name, index, batched);
        const [height, width] = dims.slice(-2);
        // A copy of this item's map only (the batch's tensor stays with its other items), into a
        // recycled buffer: the thread hands it back with the regions.
        let map: Float32Array | Float64Array;
        if (data instanceof Float32Array) {
          map = tensorBuffers.float32(data.length);
          map.set(data);
        } else map = Float64Array.from(asNumbers(data));
        return {
          fn: 'dbnetDetectTask',
          arg: { map, width, height, geometry: tensorGeometry, params: regionParams(o, scoreThreshold) },
          transfer: [map.buffer as ArrayBuffer],
        };
      },
      instances: (result) => {
        const { found, geometry, map } = result as { found: TextDetection[]; geometry: Geometry; map?: Float32Array };
        tensorBuffers.recycleView(map);
        return toInstances(found, geometry);
      },
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
