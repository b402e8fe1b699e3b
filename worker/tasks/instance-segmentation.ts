/** Spec §1.4 instance segmentation: the §1.2 fields plus one image-size mask per detection. */
import { checkInstanceMasksOutput, resultLimitBytes } from '../../shared/output-bounds.js';
import { TASKS, type MaskEncoding } from '../../shared/tasks.js';
import { buildDetector, detectionsFor } from './decoders/index.js';
import { detectionFields } from './postprocess/detections.js';
import { encodeRle, maskToPng, maskToRows } from './postprocess/mask-encoding.js';
import { defineTask } from './task.js';
import { visionInput, type VisionItem } from './vision-input.js';

const Options = TASKS['instance-segmentation'].input.omit({ image: true });

export async function encodeMasks(masks: Uint8Array[], width: number, height: number, encoding: MaskEncoding): Promise<unknown[]> {
  switch (encoding) {
    case 'array':
      return masks.map((m) => maskToRows(m, width, height));
    case 'rle':
      return masks.map((m) => encodeRle(m, width, height));
    case 'png':
      return Promise.all(masks.map((m) => maskToPng(m, width, height)));
  }
}

export const instanceSegmentation = defineTask<VisionItem<typeof Options._output>>((ctx) => {
  const input = visionInput(ctx, Options);
  const detector = buildDetector(ctx, input.batched, 'instances');
  const limit = resultLimitBytes(ctx.entry, ctx.config);
  return {
    preprocess: input.preprocess,
    collate: input.collate,
    async postprocess(outputs, index, item) {
      const dets = detectionsFor(detector, outputs, index, item);
      const { imageWidth: w, imageHeight: h } = item.geometry;
      // Before any mask is built.
      checkInstanceMasksOutput(w, h, dets.length, item.options.mask_encoding, limit);
      return {
        ...detectionFields(dets, ctx.entry.labels, detector.labelOffset),
        detection_masks: await encodeMasks(dets.map((d) => d.mask!()), w, h, item.options.mask_encoding),
      };
    },
  };
});
