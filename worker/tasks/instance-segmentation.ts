/** Spec §1.4 instance segmentation: the §1.2 fields plus one image-size mask per detection. */
import { checkInstanceMasksOutput, resultLimitBytes } from '../../shared/output-bounds.js';
import { TASKS } from '../../shared/tasks.js';
import { buildDetector, detectionsOffLoop } from './decoders/index.js';
import { detectionFields } from './postprocess/detections.js';
import { encodeMasks } from './postprocess/mask-encoding.js';
import { maskBuffers, offloopPostprocess, postprocessPool } from './postprocess/offloop.js';
import { defineTask } from './task.js';
import { visionInput, type VisionItem } from './vision-input.js';

const Options = TASKS['instance-segmentation'].input.omit({ image: true });

export { encodeMasks };

export const instanceSegmentation = defineTask<VisionItem<typeof Options._output>>((ctx) => {
  const input = visionInput(ctx, Options);
  const detector = buildDetector(ctx, input.batched, 'instances');
  const limit = resultLimitBytes(ctx.entry, ctx.options.maxResultBytes);
  return {
    preprocess: input.preprocess,
    collate: input.collate,
    freshFeeds: input.freshFeeds,
    batchCost: input.batchCost,
    maxBatchCost: input.maxBatchCost,
    async postprocess(outputs, index, item) {
      const dets = await detectionsOffLoop(detector, outputs, index, item, ctx.options);
      const { imageWidth: w, imageHeight: h } = item.geometry;
      // Before any mask is built.
      checkInstanceMasksOutput(w, h, dets.length, item.options.mask_encoding, limit);
      const masks = dets.map((d) => d.mask!());
      const encoding = item.options.mask_encoding;
      let encoded: unknown[];
      // Encoding every mask of a large image (RLE runs, PNG) is per-pixel work: in a thread past the threshold.
      if (offloopPostprocess(w * h * masks.length, ctx.options)) {
        const moved = maskBuffers(masks);
        encoded = await postprocessPool(ctx.options).run(
          'encodeMasksTask',
          { masks: moved.masks, width: w, height: h, encoding },
          moved.transfer,
        );
      } else {
        encoded = await encodeMasks(masks, w, h, encoding);
      }
      return { ...detectionFields(dets, ctx.entry.labels, detector.labelOffset), detection_masks: encoded };
    },
  };
});
