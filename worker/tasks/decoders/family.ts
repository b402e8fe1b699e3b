/**
 * A model family: how one kind of export's raw outputs become spec answers. Each family module
 * (dbnet.ts, rcnn.ts, yolo.ts, ...) declares the manifest options it reads (`postprocess`, with
 * `decoder` naming the family) and builds a decoder for each task it serves:
 * - detect: boxes, scores, classes (spec §1.2),
 * - instances: the same with an image-size mask per detection (spec §1.4),
 * - semantic: a class per image pixel (spec §1.3).
 * Decoders work in input-image pixels: they map back through the preprocessing Geometry.
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import type { Geometry } from '../geometry.js';
import type { Detection } from '../postprocess/detections.js';
import type { TaskContext } from '../task.js';

export type DecoderTask = 'detect' | 'instances' | 'semantic';

export type ModelOutputs = ort.InferenceSession.ReturnType;

export interface DecoderSetup {
  ctx: TaskContext;
  /** Whether outputs carry a batch dimension (NCHW input) or are one image's (CHW input). */
  batched: boolean;
}

export interface Instance extends Detection {
  /** Image-size 0/1 mask (row-major), computed only when asked for. */
  mask?: () => Uint8Array;
}

export interface Detector {
  /** Defaults that a request's score_threshold and max_detections replace. */
  scoreThreshold: number;
  maxDetections: number;
  /** labels-file line = class id - labelOffset (zoo R-CNNs: id 1 is line 0). */
  labelOffset: number;
  /** Item `index`'s detections scoring at least scoreThreshold, in image pixels, in any order. */
  decode(outputs: ModelOutputs, index: number, geometry: Geometry, scoreThreshold: number): Instance[];
  /** The same decode in a postprocessing thread, for decoders that work per map pixel (DBNet). */
  offload?: DetectorOffload;
}

export interface DetectorOffload {
  /** Map cells item `index`'s decode reads: compared with OFFLOOP_POSTPROCESS_PIXELS. */
  pixels(outputs: ModelOutputs, index: number): number;
  job(outputs: ModelOutputs, index: number, geometry: Geometry, scoreThreshold: number): OffloadJob;
  /** The thread's answer as decode's. */
  instances(result: unknown): Instance[];
}

/** Per-pixel answer at image size, row-major. */
export interface SegmentationMaps {
  width: number;
  height: number;
  numClasses: number;
  preds: Int32Array;
  /** Probability of the predicted class. */
  probs: Float32Array;
  /** numClasses planes, only when asked for. */
  perClass?: Float32Array[];
}

/** A postprocessing step to run in a thread: a function of postprocess/thread-tasks.ts and its argument. */
export interface OffloadJob {
  fn: string;
  arg: Record<string, unknown>;
  /** Buffers of `arg` moved to the thread (they must not be read afterwards). */
  transfer: ArrayBuffer[];
}

export interface Segmenter {
  segment(outputs: ModelOutputs, index: number, geometry: Geometry, perClass: boolean): SegmentationMaps;
  /** The same segmentation (and its encoding) as a thread job; absent: segment here, encode in the thread. */
  offload?(outputs: ModelOutputs, index: number, geometry: Geometry, perClass: boolean): OffloadJob;
}

export interface ModelFamily<S extends z.ZodType = z.ZodType> {
  /** The manifest's `postprocess.decoder`. */
  decoder: string;
  /** The manifest's `postprocess` object, `decoder` included; defaults filled in here. */
  options: S;
  detect?(options: z.output<S>, setup: DecoderSetup): Detector;
  /** A detector whose instances carry masks. */
  instances?(options: z.output<S>, setup: DecoderSetup): Detector;
  semantic?(options: z.output<S>, setup: DecoderSetup): Segmenter;
}

/** Typed family definition (options inferred from the schema). */
export function defineFamily<S extends z.ZodType>(family: ModelFamily<S>): ModelFamily<S> {
  return family;
}

/** Option fragments every family reads the same way. */
export const Probability = z.number().min(0).max(1);
export const MaxDetections = z.number().int().min(1).max(1000).default(100);
