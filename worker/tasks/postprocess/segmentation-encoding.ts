/** Semantic segmentation maps → the spec's fields in the requested encoding (see docs/models-vision.md). */
import type { MaskEncoding } from '../../../shared/tasks.js';
import type { SegmentationMaps } from '../decoders/family.js';
import { classMapToPng, encodeRle, probsToPng, toRows } from './mask-encoding.js';

export async function encodeSegmentation(
  m: SegmentationMaps,
  encoding: MaskEncoding,
): Promise<{ probs: unknown; preds: unknown }> {
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
    preds = present.map((c) => ({
      class: c,
      ...encodeRle(
        Uint8Array.from(m.preds, (v) => (v === c ? 1 : 0)),
        w,
        h,
      ),
    }));
  }
  return { probs: m.perClass ? probs : probs[0], preds };
}
