/**
 * Instance masks at the input image's resolution: a small mask that spans its box (R-CNN's
 * 28 × 28) pasted into an image-size mask. Masks are row-major Uint8Array (0/1), image width × height.
 */
import { boxSampler, thresholdIntoImage, type Box } from '../geometry.js';

/**
 * Pastes an R-CNN mask (maskWidth × maskHeight probabilities spanning the box) into an image-size
 * mask: each pixel whose center lies in the box samples the mask bilinearly and is set when the
 * value exceeds threshold. Parts of the box outside the image are cut off.
 */
export function pasteMask(
  mask: ArrayLike<number>,
  maskWidth: number,
  maskHeight: number,
  box: Box,
  imageWidth: number,
  imageHeight: number,
  threshold = 0.5,
): Uint8Array {
  if (!(box[2] - box[0] > 0 && box[3] - box[1] > 0)) return new Uint8Array(imageWidth * imageHeight);
  return thresholdIntoImage(
    boxSampler(box, maskWidth, maskHeight, imageWidth, imageHeight),
    mask,
    threshold,
    imageWidth,
    imageHeight,
  );
}
