/**
 * Decoders from a detector's raw outputs to detections in input-image pixels, each with its
 * mask on demand (instance segmentation). The manifest's `postprocess.decoder` picks one:
 * - dbnet: a text probability map (PaddleOCR DB) → rotated text regions; mask = the region.
 * - rcnn: ONNX-zoo Faster/Mask R-CNN boxes, labels, scores (+ masks [N, 1, h, w]).
 * - yolo: Ultralytics-style [N, 4 + C, anchors] grid, class-wise NMS here.
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { allProblems } from '../../shared/validation.js';
import type { Geometry } from './image-preprocess.js';
import { dbnetRegions } from './postprocess/dbnet.js';
import { tensorBoxToImage, type Box, type Detection } from './postprocess/detections.js';
import { pasteMask } from './postprocess/masks.js';
import { fillConvex, type Point } from './postprocess/polygon.js';
import { decodeRcnn } from './postprocess/rcnn.js';
import { decodeYolo } from './postprocess/yolo.js';
import { asNumbers, itemOutput, manifestProblem, requireOutput } from './vision-input.js';
import type { TaskContext } from './task.js';

const Probability = z.number().min(0).max(1);
const MaxDetections = z.number().int().min(1).max(1000).default(100);

export const InstanceDecoderSchema = z.discriminatedUnion('decoder', [
  z.object({
    decoder: z.literal('dbnet'),
    thresh: Probability.default(0.3),
    /** Default score threshold (a request's score_threshold replaces it). */
    box_thresh: Probability.default(0.6),
    unclip_ratio: z.number().positive().default(1.5),
    max_candidates: z.number().int().positive().default(1000),
    min_size: z.number().nonnegative().default(3),
    /** Class id reported for text (line of the labels file). */
    class_id: z.number().int().nonnegative().default(1),
    max_detections: MaxDetections,
  }),
  z.object({
    decoder: z.literal('rcnn'),
    score_threshold: Probability.default(0.5),
    /** labels-file line = model label - label_offset (zoo R-CNNs: label 1 is the first name). */
    label_offset: z.number().int().default(1),
    mask_threshold: Probability.default(0.5),
    max_detections: MaxDetections,
  }),
  z.object({
    decoder: z.literal('yolo'),
    score_threshold: Probability.default(0.25),
    iou_threshold: Probability.default(0.45),
    class_agnostic: z.boolean().default(false),
    max_candidates: z.number().int().positive().default(3000),
    label_offset: z.number().int().default(0),
    max_detections: MaxDetections,
  }),
]);
export type InstanceDecoderConfig = z.infer<typeof InstanceDecoderSchema>;

export interface Instance extends Detection {
  /** Image-size 0/1 mask (row-major), computed only when asked for. */
  mask?: () => Uint8Array;
}

export interface InstanceDecoder {
  scoreThreshold: number;
  maxDetections: number;
  labelOffset: number;
  hasMasks: boolean;
  decode(outputs: ort.InferenceSession.ReturnType, index: number, geometry: Geometry, scoreThreshold: number): Instance[];
}

/** Tensor pixels → image pixels without clamping (masks need the true shape past the border). */
function toImage(g: Geometry, x: number, y: number): Point {
  return [(x - g.padLeft + g.cropLeft) / g.scaleX, (y - g.padTop + g.cropTop) / g.scaleY];
}

function clampBox(g: Geometry, b: Box): Box {
  const cx = (v: number) => Math.min(Math.max(v, 0), g.imageWidth);
  const cy = (v: number) => Math.min(Math.max(v, 0), g.imageHeight);
  return [cx(b[0]), cy(b[1]), cx(b[2]), cy(b[3])];
}

export function parseInstanceDecoder(ctx: TaskContext): InstanceDecoderConfig {
  const parsed = InstanceDecoderSchema.safeParse(ctx.entry.manifest.postprocess);
  if (!parsed.success) {
    throw manifestProblem(ctx, `invalid postprocess (decoder: dbnet | rcnn | yolo): ${allProblems(parsed.error, 'decoder')}`);
  }
  return parsed.data;
}

export function instanceDecoder(ctx: TaskContext, cfg: InstanceDecoderConfig, batched: boolean, wantMasks: boolean): InstanceDecoder {
  switch (cfg.decoder) {
    case 'dbnet': {
      const mapName = requireOutput(ctx, 'probability_map', 'the dbnet decoder reads a [N, 1, H, W] text probability map');
      return {
        scoreThreshold: cfg.box_thresh,
        maxDetections: cfg.max_detections,
        labelOffset: 0,
        hasMasks: true,
        decode(outputs, index, g, scoreThreshold) {
          const { data, dims } = itemOutput(outputs, mapName, index, batched);
          const [mapH, mapW] = dims.slice(-2);
          const regions = dbnetRegions(asNumbers(data), mapW, mapH, {
            thresh: cfg.thresh,
            boxThresh: scoreThreshold,
            unclipRatio: cfg.unclip_ratio,
            maxCandidates: cfg.max_candidates,
            minSize: cfg.min_size,
          });
          return regions.map((r) => {
            const quad = r.quad.map(([x, y]) => toImage(g, (x * g.tensorWidth) / mapW, (y * g.tensorHeight) / mapH));
            const xs = quad.map((p) => p[0]);
            const ys = quad.map((p) => p[1]);
            const box = clampBox(g, [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]);
            return { box, score: r.score, classId: cfg.class_id, mask: () => fillConvex(quad, g.imageWidth, g.imageHeight) };
          });
        },
      };
    }
    case 'rcnn': {
      if (batched) throw manifestProblem(ctx, 'the rcnn decoder reads unbatched outputs: set preprocess.layout to "CHW"');
      const why = 'the rcnn decoder reads boxes [N, 4], labels [N] and scores [N]';
      const names = { boxes: requireOutput(ctx, 'boxes', why), labels: requireOutput(ctx, 'labels', why), scores: requireOutput(ctx, 'scores', why) };
      const masksName = wantMasks ? requireOutput(ctx, 'masks', 'instance segmentation reads R-CNN masks [N, 1, h, w]') : null;
      return {
        scoreThreshold: cfg.score_threshold,
        maxDetections: cfg.max_detections,
        labelOffset: cfg.label_offset,
        hasMasks: masksName !== null,
        decode(outputs, index, g, scoreThreshold) {
          const out = (n: string) => itemOutput(outputs, n, index, false);
          const dets = decodeRcnn(asNumbers(out(names.boxes).data), out(names.labels).data, asNumbers(out(names.scores).data));
          const masks = masksName ? out(masksName) : null;
          return dets
            .filter((d) => d.score >= scoreThreshold)
            .map((d) => {
              const tl = toImage(g, d.box[0], d.box[1]);
              const br = toImage(g, d.box[2], d.box[3]);
              const exact: Box = [tl[0], tl[1], br[0], br[1]];
              const instance: Instance = { box: clampBox(g, exact), score: d.score, classId: d.classId };
              if (masks) {
                const [mh, mw] = masks.dims.slice(-2);
                const plane = asNumbers(masks.data);
                const size = mh * mw;
                const row = Array.prototype.slice.call(plane, d.index * size, (d.index + 1) * size) as number[];
                instance.mask = () => pasteMask(row, mw, mh, exact, g.imageWidth, g.imageHeight, cfg.mask_threshold);
              }
              return instance;
            });
        },
      };
    }
    case 'yolo': {
      if (wantMasks) throw manifestProblem(ctx, 'the yolo decoder has no masks; instance segmentation needs the dbnet or rcnn decoder');
      const predName = requireOutput(ctx, 'predictions', 'the yolo decoder reads [N, 4 + classes, anchors]');
      return {
        scoreThreshold: cfg.score_threshold,
        maxDetections: cfg.max_detections,
        labelOffset: cfg.label_offset,
        hasMasks: false,
        decode(outputs, index, g, scoreThreshold) {
          const { data, dims } = itemOutput(outputs, predName, index, batched);
          const [rows, anchors] = dims.slice(-2);
          const dets = decodeYolo(asNumbers(data), rows, anchors, {
            scoreThreshold,
            iouThreshold: cfg.iou_threshold,
            classAgnostic: cfg.class_agnostic,
            maxCandidates: cfg.max_candidates,
          });
          return dets.map((d) => ({ ...d, box: tensorBoxToImage(g, d.box) }));
        },
      };
    }
  }
}
