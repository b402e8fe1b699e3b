/** Spec §1.2 object detection: image → detector outputs → detection_boxes/scores/classes/class_names. */
import { TASKS } from '../../shared/tasks.js';
import { instanceDecoder, parseInstanceDecoder } from './instance-decoders.js';
import { detectionFields, selectDetections } from './postprocess/detections.js';
import { visionInput, type VisionItem } from './vision-input.js';
import type { TaskFactory, TaskPipeline } from './task.js';

const Options = TASKS['object-detection'].input.omit({ image: true });

export const objectDetection: TaskFactory = (ctx) => {
  const input = visionInput(ctx, Options);
  const decoder = instanceDecoder(ctx, parseInstanceDecoder(ctx), input.batched, false);
  const pipeline: TaskPipeline<VisionItem<typeof Options._output>> = {
    preprocess: input.preprocess,
    collate: input.collate,
    postprocess(outputs, index, item) {
      const selection = {
        scoreThreshold: item.options.score_threshold ?? decoder.scoreThreshold,
        maxDetections: item.options.max_detections ?? decoder.maxDetections,
      };
      const dets = selectDetections(decoder.decode(outputs, index, item.geometry, selection.scoreThreshold), selection);
      return { ...detectionFields(dets, ctx.entry.labels, decoder.labelOffset) };
    },
  };
  return pipeline as unknown as TaskPipeline;
};
