/** Spec §1.4 instance segmentation: the §1.2 fields plus one image-size mask per detection. */
import { TASKS, type MaskEncoding } from '../../shared/tasks.js';
import { instanceDecoder, parseInstanceDecoder } from './instance-decoders.js';
import { detectionFields, selectDetections } from './postprocess/detections.js';
import { encodeRle, maskToPng, maskToRows } from './postprocess/mask-encoding.js';
import { visionInput, type VisionItem } from './vision-input.js';
import type { TaskFactory, TaskPipeline } from './task.js';

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

export const instanceSegmentation: TaskFactory = (ctx) => {
  const input = visionInput(ctx, Options);
  const decoder = instanceDecoder(ctx, parseInstanceDecoder(ctx), input.batched, true);
  const pipeline: TaskPipeline<VisionItem<typeof Options._output>> = {
    preprocess: input.preprocess,
    collate: input.collate,
    async postprocess(outputs, index, item) {
      const selection = {
        scoreThreshold: item.options.score_threshold ?? decoder.scoreThreshold,
        maxDetections: item.options.max_detections ?? decoder.maxDetections,
      };
      const dets = selectDetections(decoder.decode(outputs, index, item.geometry, selection.scoreThreshold), selection);
      const { imageWidth: w, imageHeight: h } = item.geometry;
      const masks = dets.map((d) => d.mask!());
      return {
        ...detectionFields(dets, ctx.entry.labels, decoder.labelOffset),
        detection_masks: await encodeMasks(masks, w, h, item.options.mask_encoding),
      };
    },
  };
  return pipeline as unknown as TaskPipeline;
};
