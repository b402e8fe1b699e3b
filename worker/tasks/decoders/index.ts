/**
 * Model families by the manifest's `postprocess.decoder`. Adding a family: one module in this
 * folder (see docs/model-families.md) and one line in MODEL_FAMILIES.
 */
import { allProblems } from '../../../shared/validation.js';
import type { Geometry } from '../geometry.js';
import { manifestProblem } from '../outputs.js';
import { selectDetections } from '../postprocess/detections.js';
import { offloopPostprocess, postprocessPool } from '../postprocess/offloop.js';
import type { TaskContext } from '../task.js';
import { dbnet } from './dbnet.js';
import type { DecoderTask, Detector, Instance, ModelFamily, ModelOutputs, Segmenter } from './family.js';
import { rcnn } from './rcnn.js';
import { tfSeg } from './tf-seg.js';
import { torchvisionSeg } from './torchvision-seg.js';
import { yolo } from './yolo.js';
import { yoloV8Seg } from './yolov8-seg.js';
import { yolox } from './yolox.js';

export const MODEL_FAMILIES: readonly ModelFamily[] = [dbnet, rcnn, yolo, yolox, yoloV8Seg, torchvisionSeg, tfSeg];

const NEEDS: Record<DecoderTask, { task: string; lacks: string }> = {
  detect: { task: 'object detection', lacks: 'has no boxes' },
  instances: { task: 'instance segmentation', lacks: 'has no masks' },
  semantic: { task: 'semantic segmentation', lacks: 'has no per-pixel classes' },
};

/** The decoders that serve a task, for error messages and docs. */
export function decodersFor(task: DecoderTask): string[] {
  return MODEL_FAMILIES.filter((f) => f[task]).map((f) => f.decoder);
}

function build<T extends DecoderTask>(
  ctx: TaskContext,
  batched: boolean,
  task: T,
): ReturnType<NonNullable<ModelFamily[T]>> {
  const postprocess = ctx.entry.manifest.postprocess;
  const serving = decodersFor(task).join(' | ');
  const family = MODEL_FAMILIES.find((f) => f.decoder === postprocess.decoder);
  if (!family) {
    const problem =
      postprocess.decoder === undefined
        ? 'decoder is required'
        : `unknown decoder ${JSON.stringify(postprocess.decoder)}`;
    throw manifestProblem(ctx, `invalid postprocess (decoder: ${serving}): ${problem}`);
  }
  const builder = family[task];
  if (!builder)
    throw manifestProblem(
      ctx,
      `the ${family.decoder} decoder ${NEEDS[task].lacks}; ${NEEDS[task].task} needs decoder: ${serving}`,
    );
  const options = family.options.safeParse(postprocess);
  if (!options.success)
    throw manifestProblem(
      ctx,
      `invalid postprocess (decoder: ${family.decoder}): ${allProblems(options.error, 'decoder')}`,
    );
  return builder(options.data, { ctx, batched }) as ReturnType<NonNullable<ModelFamily[T]>>;
}

/** The detector of the model's family for detection (`detect`) or instance segmentation (`instances`). */
export function buildDetector(ctx: TaskContext, batched: boolean, task: 'detect' | 'instances'): Detector {
  return build(ctx, batched, task);
}

export function buildSegmenter(ctx: TaskContext, batched: boolean): Segmenter {
  return build(ctx, batched, 'semantic');
}

export interface DetectionRequest {
  geometry: Geometry;
  options: { score_threshold?: number; max_detections?: number };
}

/** One item's detections as the request selects them (its thresholds, else the manifest's): best first. */
export function detectionsFor(
  detector: Detector,
  outputs: ModelOutputs,
  index: number,
  item: DetectionRequest,
): Instance[] {
  const selection = selectionFor(detector, item);
  return selectDetections(detector.decode(outputs, index, item.geometry, selection.scoreThreshold), selection);
}

function selectionFor(detector: Detector, item: DetectionRequest) {
  return {
    scoreThreshold: item.options.score_threshold ?? detector.scoreThreshold,
    maxDetections: item.options.max_detections ?? detector.maxDetections,
  };
}

/**
 * detectionsFor, with the decode in a postprocessing thread when the detector works per map
 * pixel and the map passes OFFLOOP_POSTPROCESS_PIXELS (a page's DBNet map): the event loop keeps
 * feeding the session meanwhile. The same answer either way.
 */
export async function detectionsOffLoop(
  detector: Detector,
  outputs: ModelOutputs,
  index: number,
  item: DetectionRequest,
  options: TaskContext['options'],
): Promise<Instance[]> {
  const off = detector.offload;
  if (!off || !offloopPostprocess(off.pixels(outputs, index), options))
    return detectionsFor(detector, outputs, index, item);
  const selection = selectionFor(detector, item);
  const job = off.job(outputs, index, item.geometry, selection.scoreThreshold);
  const result = await postprocessPool(options).run(job.fn, job.arg, job.transfer);
  return selectDetections(off.instances(result), selection);
}
