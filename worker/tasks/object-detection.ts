/** Spec §1.2 object detection: image → the model family's detector → detection_boxes/scores/classes/class_names. */
import { TASKS } from '../../shared/tasks.js';
import { buildDetector, detectionsOffLoop } from './decoders/index.js';
import { detectionFields } from './postprocess/detections.js';
import { defineTask } from './task.js';
import { visionInput, type VisionItem } from './vision-input.js';

const Options = TASKS['object-detection'].input.omit({ image: true });

export const objectDetection = defineTask<VisionItem<typeof Options._output>>((ctx) => {
  const input = visionInput(ctx, Options);
  const detector = buildDetector(ctx, input.batched, 'detect');
  return {
    preprocess: input.preprocess,
    collate: input.collate,
    freshFeeds: input.freshFeeds,
    batchCost: input.batchCost,
    maxBatchCost: input.maxBatchCost,
    async postprocess(outputs, index, item) {
      return {
        ...detectionFields(
          await detectionsOffLoop(detector, outputs, index, item, ctx.options),
          ctx.entry.labels,
          detector.labelOffset,
        ),
      };
    },
  };
});
