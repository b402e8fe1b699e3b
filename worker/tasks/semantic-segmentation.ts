/**
 * Spec §1.3 semantic segmentation: per input-image pixel, `preds` (class id) and `probs`
 * (probability of that class; all classes' with per_class_probs), at the input image's size.
 * The model family's segmenter (decoders/) makes the maps; this file encodes them.
 */
import { labelCount } from '../../shared/manifest.js';
import { checkSegmentationOutput, resultLimitBytes } from '../../shared/output-bounds.js';
import { TASKS } from '../../shared/tasks.js';
import { buildSegmenter } from './decoders/index.js';
import { encodeSegmentation } from './postprocess/segmentation-encoding.js';
import { mapBuffers, offloopPostprocess, postprocessPool } from './postprocess/offloop.js';
import { defineTask } from './task.js';
import { visionInput, type VisionItem } from './vision-input.js';

const Options = TASKS['semantic-segmentation'].input.omit({ image: true });

export { encodeSegmentation };

export const semanticSegmentation = defineTask<VisionItem<typeof Options._output>>((ctx) => {
  const input = visionInput(ctx, Options);
  const segmenter = buildSegmenter(ctx, input.batched);
  const limit = resultLimitBytes(ctx.entry, ctx.options.maxResultBytes);
  const classes = labelCount(ctx.entry.labels) || 2;
  return {
    preprocess: input.preprocess,
    collate: input.collate,
    freshFeeds: input.freshFeeds,
    batchCost: input.batchCost,
    maxBatchCost: input.maxBatchCost,
    async postprocess(outputs, index, item) {
      // Before any per-pixel map is allocated.
      checkSegmentationOutput(item.geometry.imageWidth, item.geometry.imageHeight, classes, item.options, limit);
      const { encoding, per_class_probs: perClass } = item.options;
      // A large image's per-pixel work (resampling, softmax, encoding) runs in a thread: seconds
      // at 3000×3000 that would stall lock renewals and other models' jobs on this event loop.
      if (offloopPostprocess(item.geometry.imageWidth * item.geometry.imageHeight, ctx.options)) {
        const job = segmenter.offload?.(outputs, index, item.geometry, perClass);
        if (job) return postprocessPool(ctx.options).run(job.fn, { ...job.arg, encoding }, job.transfer);
        const maps = segmenter.segment(outputs, index, item.geometry, perClass);
        return postprocessPool(ctx.options).run('encodeSegmentationTask', { maps, encoding }, mapBuffers(maps));
      }
      return encodeSegmentation(segmenter.segment(outputs, index, item.geometry, perClass), encoding);
    },
  };
});
