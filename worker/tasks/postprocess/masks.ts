/**
 * Masks and maps at the input image's resolution: bilinear resampling of a model's map back
 * through the preprocessing geometry, and pasting a small R-CNN mask into its box.
 * Masks are row-major Uint8Array (0/1), image width × height.
 */
import type { Geometry } from '../image-preprocess.js';
import type { Box } from './detections.js';

/** Per image column (or row): the two map cells to blend and the weight of the second. */
export interface AxisSampler {
  i0: Int32Array;
  i1: Int32Array;
  w: Float32Array;
}

function axisSampler(
  imageSize: number,
  scale: number,
  shift: number,
  tensorSize: number,
  mapSize: number,
  contentStart: number,
  contentSize: number,
): AxisSampler {
  const ratio = mapSize / tensorSize;
  // Only the image part of the map is sampled: padding never bleeds into the border pixels.
  const lo = Math.max(0, Math.floor(contentStart * ratio));
  const hi = Math.min(mapSize - 1, Math.max(lo, Math.ceil((contentStart + contentSize) * ratio) - 1));
  const i0 = new Int32Array(imageSize);
  const i1 = new Int32Array(imageSize);
  const w = new Float32Array(imageSize);
  for (let i = 0; i < imageSize; i++) {
    const t = ((i + 0.5) * scale + shift) * ratio - 0.5;
    const c = Math.min(Math.max(t, lo), hi);
    const f = Math.floor(c);
    i0[i] = f;
    i1[i] = Math.min(f + 1, hi);
    w[i] = c - f;
  }
  return { i0, i1, w };
}

export interface ImageSampler {
  x: AxisSampler;
  y: AxisSampler;
  width: number;
  height: number;
  mapWidth: number;
}

/** How to read a map of mapWidth × mapHeight (covering the model's input tensor) at each input-image pixel. */
export function imageSampler(g: Geometry, mapWidth: number, mapHeight: number): ImageSampler {
  return {
    x: axisSampler(g.imageWidth, g.scaleX, g.padLeft - g.cropLeft, g.tensorWidth, mapWidth, g.padLeft, g.contentWidth),
    y: axisSampler(g.imageHeight, g.scaleY, g.padTop - g.cropTop, g.tensorHeight, mapHeight, g.padTop, g.contentHeight),
    width: g.imageWidth,
    height: g.imageHeight,
    mapWidth,
  };
}

/** One plane (starting at `offset` in `map`) resampled to the image: Float32Array width × height. */
export function resamplePlane(s: ImageSampler, map: ArrayLike<number>, offset = 0): Float32Array {
  const out = new Float32Array(s.width * s.height);
  const W = s.mapWidth;
  for (let y = 0; y < s.height; y++) {
    const r0 = offset + s.y.i0[y] * W;
    const r1 = offset + s.y.i1[y] * W;
    const wy = s.y.w[y];
    for (let x = 0; x < s.width; x++) {
      const a = s.x.i0[x];
      const b = s.x.i1[x];
      const wx = s.x.w[x];
      const top = map[r0 + a] * (1 - wx) + map[r0 + b] * wx;
      const bottom = map[r1 + a] * (1 - wx) + map[r1 + b] * wx;
      out[y * s.width + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

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
  const out = new Uint8Array(imageWidth * imageHeight);
  const [x1, y1, x2, y2] = box;
  const bw = x2 - x1;
  const bh = y2 - y1;
  if (!(bw > 0 && bh > 0)) return out;
  const xStart = Math.max(0, Math.ceil(x1 - 0.5));
  const xEnd = Math.min(imageWidth - 1, Math.ceil(x2 - 0.5) - 1);
  const yStart = Math.max(0, Math.ceil(y1 - 0.5));
  const yEnd = Math.min(imageHeight - 1, Math.ceil(y2 - 0.5) - 1);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let y = yStart; y <= yEnd; y++) {
    const v = clamp(((y + 0.5 - y1) / bh) * maskHeight - 0.5, maskHeight - 1);
    const v0 = Math.floor(v);
    const v1 = Math.min(v0 + 1, maskHeight - 1);
    const wv = v - v0;
    for (let x = xStart; x <= xEnd; x++) {
      const u = clamp(((x + 0.5 - x1) / bw) * maskWidth - 0.5, maskWidth - 1);
      const u0 = Math.floor(u);
      const u1 = Math.min(u0 + 1, maskWidth - 1);
      const wu = u - u0;
      const top = mask[v0 * maskWidth + u0] * (1 - wu) + mask[v0 * maskWidth + u1] * wu;
      const bottom = mask[v1 * maskWidth + u0] * (1 - wu) + mask[v1 * maskWidth + u1] * wu;
      if (top * (1 - wv) + bottom * wv > threshold) out[y * imageWidth + x] = 1;
    }
  }
  return out;
}
