/**
 * Geometry between the model's input tensor and the input image, shared by preprocessing (which
 * records it) and every decoder (which maps back through it): point and box mapping, clamping,
 * and bilinear sampling of a model's map (or a small mask inside a box) at image pixels.
 * Pixel i spans [i, i + 1): its center is i + 0.5.
 */

/**
 * Where the tensor's pixels come from: tensor (x, y) = ((x_img * scaleX - cropLeft) + padLeft, ...).
 * `contentWidth/Height` is the part of the tensor that holds image (the rest is padding).
 */
export interface Geometry {
  imageWidth: number;
  imageHeight: number;
  tensorWidth: number;
  tensorHeight: number;
  scaleX: number;
  scaleY: number;
  padLeft: number;
  padTop: number;
  cropLeft: number;
  cropTop: number;
  contentWidth: number;
  contentHeight: number;
}

export type Point = [number, number];

/** [x1, y1, x2, y2]: left, top, right, bottom. */
export type Box = [number, number, number, number];

/** A point in tensor pixels → input-image pixels, not clamped (masks need the true shape past the border). */
export function tensorToImage(g: Geometry, x: number, y: number): Point {
  return [(x - g.padLeft + g.cropLeft) / g.scaleX, (y - g.padTop + g.cropTop) / g.scaleY];
}

export function clampPoint(g: Geometry, [x, y]: Point): Point {
  return [Math.min(Math.max(x, 0), g.imageWidth), Math.min(Math.max(y, 0), g.imageHeight)];
}

export function clampBox(g: Geometry, b: Box): Box {
  const [x1, y1] = clampPoint(g, [b[0], b[1]]);
  const [x2, y2] = clampPoint(g, [b[2], b[3]]);
  return [x1, y1, x2, y2];
}

/** A point in tensor pixels → input-image pixels, clamped to the image. */
export function tensorToImagePoint(g: Geometry, x: number, y: number): Point {
  return clampPoint(g, tensorToImage(g, x, y));
}

/** A box in tensor pixels → input-image pixels, not clamped. */
export function tensorBoxToImageExact(g: Geometry, box: Box): Box {
  const [x1, y1] = tensorToImage(g, box[0], box[1]);
  const [x2, y2] = tensorToImage(g, box[2], box[3]);
  return [x1, y1, x2, y2];
}

/** A box in tensor pixels → input-image pixels (undoing resize, padding and crop), clamped to the image. */
export function tensorBoxToImage(g: Geometry, box: Box): Box {
  return clampBox(g, tensorBoxToImageExact(g, box));
}

export interface MapPart {
  map: ArrayLike<number>;
  width: number;
  height: number;
  /** The geometry of this part: as if the model's input tensor had been only the part it covers. */
  geometry: Geometry;
}

/**
 * The cells of a map (mapWidth × mapHeight, covering the whole input tensor) that cover the
 * image, and their geometry. Decoders that search a whole map for regions (DBNet) read only
 * this, so padding (a shape bucket's, a letterbox's) can never yield a region of its own. The
 * whole map, not a copy, when there is no padding; a view of its rows when padding is only below.
 */
export function contentOfMap(g: Geometry, map: ArrayLike<number>, mapWidth: number, mapHeight: number): MapPart {
  const rx = mapWidth / g.tensorWidth;
  const ry = mapHeight / g.tensorHeight;
  const x0 = Math.max(0, Math.floor(g.padLeft * rx));
  const y0 = Math.max(0, Math.floor(g.padTop * ry));
  const x1 = Math.min(mapWidth, Math.max(x0 + 1, Math.ceil((g.padLeft + g.contentWidth) * rx)));
  const y1 = Math.min(mapHeight, Math.max(y0 + 1, Math.ceil((g.padTop + g.contentHeight) * ry)));
  if (x0 === 0 && y0 === 0 && x1 === mapWidth && y1 === mapHeight)
    return { map, width: mapWidth, height: mapHeight, geometry: g };
  const width = x1 - x0;
  const height = y1 - y0;
  let part: ArrayLike<number>;
  if (x0 === 0 && x1 === mapWidth && (map instanceof Float32Array || map instanceof Float64Array)) {
    // Whole rows (padding only below): a view, no copy.
    part = map.subarray(y0 * mapWidth, y1 * mapWidth);
  } else {
    const copy = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      const from = (y0 + y) * mapWidth + x0;
      for (let x = 0; x < width; x++) copy[y * width + x] = map[from + x];
    }
    part = copy;
  }
  const geometry = {
    ...g,
    tensorWidth: width / rx,
    tensorHeight: height / ry,
    padLeft: g.padLeft - x0 / rx,
    padTop: g.padTop - y0 / ry,
  };
  return { map: part, width, height, geometry };
}

/** Per output column (or row): the two map cells to blend and the weight of the second. */
export interface AxisSampler {
  /** First image pixel covered. */
  start: number;
  i0: Int32Array;
  i1: Int32Array;
  w: Float64Array;
}

/**
 * Samples for `count` pixels from `start`: `toMap` takes a pixel's center to map units (cell c
 * spans [c, c + 1)); the sample is kept inside cells [lo, hi].
 */
export function axisSampler(
  start: number,
  count: number,
  toMap: (center: number) => number,
  lo: number,
  hi: number,
): AxisSampler {
  const i0 = new Int32Array(count);
  const i1 = new Int32Array(count);
  const w = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    const c = Math.min(Math.max(toMap(start + k + 0.5) - 0.5, lo), hi);
    const f = Math.floor(c);
    i0[k] = f;
    i1[k] = Math.min(f + 1, hi);
    w[k] = c - f;
  }
  return { start, i0, i1, w };
}

export interface ImageSampler {
  x: AxisSampler;
  y: AxisSampler;
  /** Pixels covered: the whole image, or a box's part of it. */
  width: number;
  height: number;
  mapWidth: number;
}

export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The pixels whose centers lie in the box, clipped to the image. */
export function pixelsInBox(box: Box, imageWidth: number, imageHeight: number): PixelRect {
  const left = Math.max(0, Math.ceil(box[0] - 0.5));
  const right = Math.min(imageWidth - 1, Math.ceil(box[2] - 0.5) - 1);
  const top = Math.max(0, Math.ceil(box[1] - 0.5));
  const bottom = Math.min(imageHeight - 1, Math.ceil(box[3] - 0.5) - 1);
  return { left, top, width: Math.max(0, right - left + 1), height: Math.max(0, bottom - top + 1) };
}

/**
 * How to read a map of mapWidth × mapHeight (covering the model's whole input tensor) at each
 * input-image pixel, or only at the pixels of `region`. Only the image part of the map is
 * sampled: padding never bleeds into the border pixels.
 */
export function imageSampler(g: Geometry, mapWidth: number, mapHeight: number, region?: PixelRect): ImageSampler {
  const r = region ?? { left: 0, top: 0, width: g.imageWidth, height: g.imageHeight };
  const axis = (
    start: number,
    count: number,
    scale: number,
    shift: number,
    tensorSize: number,
    mapSize: number,
    contentStart: number,
    contentSize: number,
  ) => {
    const ratio = mapSize / tensorSize;
    const lo = Math.max(0, Math.floor(contentStart * ratio));
    const hi = Math.min(mapSize - 1, Math.max(lo, Math.ceil((contentStart + contentSize) * ratio) - 1));
    return axisSampler(start, count, (c) => (c * scale + shift) * ratio, lo, hi);
  };
  return {
    x: axis(r.left, r.width, g.scaleX, g.padLeft - g.cropLeft, g.tensorWidth, mapWidth, g.padLeft, g.contentWidth),
    y: axis(r.top, r.height, g.scaleY, g.padTop - g.cropTop, g.tensorHeight, mapHeight, g.padTop, g.contentHeight),
    width: r.width,
    height: r.height,
    mapWidth,
  };
}

/** How to read a mask of maskWidth × maskHeight that spans `box` (image pixels) at the box's pixels. */
export function boxSampler(
  box: Box,
  maskWidth: number,
  maskHeight: number,
  imageWidth: number,
  imageHeight: number,
): ImageSampler {
  const r = pixelsInBox(box, imageWidth, imageHeight);
  const bw = box[2] - box[0];
  const bh = box[3] - box[1];
  return {
    x: axisSampler(r.left, r.width, (c) => ((c - box[0]) / bw) * maskWidth, 0, maskWidth - 1),
    y: axisSampler(r.top, r.height, (c) => ((c - box[1]) / bh) * maskHeight, 0, maskHeight - 1),
    width: r.width,
    height: r.height,
    mapWidth: maskWidth,
  };
}

/** The map's bilinear value at the sampler's pixel (x, y) (indices into the sampler, not the image). */
export function bilinearAt(s: ImageSampler, map: ArrayLike<number>, offset: number, x: number, y: number): number {
  const r0 = offset + s.y.i0[y] * s.mapWidth;
  const r1 = offset + s.y.i1[y] * s.mapWidth;
  const a = s.x.i0[x];
  const b = s.x.i1[x];
  const wx = s.x.w[x];
  const wy = s.y.w[y];
  const top = map[r0 + a] * (1 - wx) + map[r0 + b] * wx;
  const bottom = map[r1 + a] * (1 - wx) + map[r1 + b] * wx;
  return top * (1 - wy) + bottom * wy;
}

/** One plane (starting at `offset` in `map`) resampled at the sampler's pixels: Float32Array width × height. */
export function resamplePlane(s: ImageSampler, map: ArrayLike<number>, offset = 0): Float32Array {
  const out = new Float32Array(s.width * s.height);
  for (let y = 0; y < s.height; y++) {
    for (let x = 0; x < s.width; x++) out[y * s.width + x] = bilinearAt(s, map, offset, x, y);
  }
  return out;
}

/** An image-size 0/1 mask set where the resampled plane exceeds threshold (only the sampler's pixels can be set). */
export function thresholdIntoImage(
  s: ImageSampler,
  map: ArrayLike<number>,
  threshold: number,
  imageWidth: number,
  imageHeight: number,
  offset = 0,
): Uint8Array {
  const out = new Uint8Array(imageWidth * imageHeight);
  for (let y = 0; y < s.height; y++) {
    const row = (s.y.start + y) * imageWidth + s.x.start;
    for (let x = 0; x < s.width; x++) if (bilinearAt(s, map, offset, x, y) > threshold) out[row + x] = 1;
  }
  return out;
}
