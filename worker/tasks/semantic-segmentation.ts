/**
 * Spec §1.3 semantic segmentation: per input-image pixel, `preds` (class id) and `probs`
 * (probability of that class; all classes' with per_class_probs), at the input image's size.
 * The model family's segmenter (decoders/) makes the maps; this file encodes them.
 */
import { labelCount } from '../../shared/manifest.js';
import { checkSegmentationOutput, resultLimitBytes } from '../../shared/output-bounds.js';
import { TASKS, type MaskEncoding } from '../../shared/tasks.js';
import type { SegmentationMaps } from './decoders/family.js';
import { buildSegmenter } from './decoders/index.js';
import { classMapToPng, encodeRle, probsToPng, toRows } from './postprocess/mask-encoding.js';
import { defineTask } from './task.js';
import { visionInput, type VisionItem } from './vision-input.js';

const Options = TASKS['semantic-segmentation'].input.omit({ image: true });

/** The spec's fields in the requested encoding (see docs/models-vision.md). */
export async function encodeSegmentation(m: SegmentationMaps, encoding: MaskEncoding): Promise<{ probs: unknown; preds: unknown }> {
  const { width: w, height: h } = m;
  const probPlanes = m.perClass ?? [m.probs];
  const probs =
    encoding === 'array'
      ? probPlanes.map((p) => toRows(p, w, h, (v) => v))
      : await Promise.all(probPlanes.map((p) => probsToPng(p, w, h)));
  let preds: unknown;
  if (encoding === 'array') preds = toRows(m.preds, w, h, (v) => v);
  else if (encoding === 'png') preds = await classMapToPng(m.preds, w, h, m.numClasses);
  else {
    const present = [...new Set(m.preds)].sort((a, b) => a - b);
    preds = present.map((c) => ({ class: c, ...encodeRle(Uint8Array.from(m.preds, (v) => (v === c ? 1 : 0)), w, h) }));
  }
  return { probs: m.perClass ? probs : probs[0], preds };
}

export const semanticSegmentation = defineTask<VisionItem<typeof Options._output>>((ctx) => {
  const input = visionInput(ctx, Options);
  const segmenter = buildSegmenter(ctx, input.batched);
  const limit = resultLimitBytes(ctx.entry, ctx.config);
  const classes = labelCount(ctx.entry.labels) || 2;
  return {
    preprocess: input.preprocess,
    collate: input.collate,
    async postprocess(outputs, index, item) {
      // Before any per-pixel map is allocated.
      checkSegmentationOutput(item.geometry.imageWidth, item.geometry.imageHeight, classes, item.options, limit);
      const maps = segmenter.segment(outputs, index, item.geometry, item.options.per_class_probs);
      return encodeSegmentation(maps, item.options.encoding);
    },
  };
});
