/**
 * Shape buckets (manifest `batching.pad_to_bucket`): an image's tensor, after its own resize, is
 * padded on the right and bottom up to a bucket shape, so that images whose sizes differ a
 * little share one tensor shape, hence one batch and one session.run. Pure geometry here;
 * preprocessing pads (image-preprocess.ts), decoders crop the padding off again (geometry.ts).
 */
import type { PadToBucket } from '../../shared/manifest.js';

export interface Shape {
  width: number;
  height: number;
}

/** One side rounded up to its bucket: the next multiple, or the smallest listed size that holds it (past the largest: unchanged). */
export function bucketSide(side: number, spec: Pick<PadToBucket, 'multiple' | 'sizes'>): number {
  if (spec.multiple !== undefined) return Math.ceil(side / spec.multiple) * spec.multiple;
  return spec.sizes?.find((s) => s >= side) ?? side;
}

/** Share of the bucket's area that would be padding. */
export function bucketWaste(content: Shape, bucket: Shape): number {
  return 1 - (content.width * content.height) / (bucket.width * bucket.height);
}

/**
 * The tensor shape an image of `content` size is padded to. The image keeps its own shape when
 * the padding would exceed `max_waste` of the bucket (padding costs inference time, and a
 * mostly-empty tensor is not worth the larger batch).
 */
export function bucketShape(content: Shape, spec: PadToBucket): Shape {
  const bucket = { width: bucketSide(content.width, spec), height: bucketSide(content.height, spec) };
  // The epsilon keeps an exact quarter (e.g. 288×160 in 320×192) inside a 0.25 cap despite rounding.
  return bucketWaste(content, bucket) <= spec.max_waste + 1e-9 ? bucket : { ...content };
}
