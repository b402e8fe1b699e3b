/**
 * Compact forms of masks and per-pixel maps (the spec's nested arrays are the default; a
 * 4000×3000 instance mask is 12 M booleans as JSON):
 * - COCO run-length encoding, uncompressed, as pycocotools writes it: {size: [h, w], counts},
 *   runs over the mask in column-major (Fortran) order, starting with a run of zeros.
 * - PNG, base64: grayscale, 8-bit (masks: 0/255; class maps under 256 classes) or 16-bit.
 */
import sharp from 'sharp';
import type { MaskEncoding } from '../../../shared/tasks.js';

export interface Rle {
  size: [number, number];
  counts: number[];
}

export interface PngImage {
  format: 'png';
  size: [number, number];
  /** Pixel value = stored value × scale (probability maps); absent for masks and class maps. */
  scale?: number;
  data: string;
}

/** Row-major 0/1 mask of width × height → COCO uncompressed RLE (column-major runs). */
export function encodeRle(mask: ArrayLike<number>, width: number, height: number): Rle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** The inverse of encodeRle, row-major 0/1 (for tests and clients written in JS). */
export function decodeRle(rle: Rle): Uint8Array {
  const [height, width] = rle.size;
  const out = new Uint8Array(width * height);
  let pos = 0;
  rle.counts.forEach((n, i) => {
    for (let k = 0; k < n; k++, pos++) {
      if (i % 2 === 1) {
        const x = Math.floor(pos / height);
        const y = pos % height;
        out[y * width + x] = 1;
      }
    }
  });
  return out;
}

/** Row-major values → nested arrays [height][width]. */
export function toRows<T>(values: ArrayLike<number>, width: number, height: number, map: (v: number) => T): T[][] {
  const rows: T[][] = new Array(height);
  for (let y = 0; y < height; y++) {
    const row: T[] = new Array(width);
    for (let x = 0; x < width; x++) row[x] = map(values[y * width + x]);
    rows[y] = row;
  }
  return rows;
}

export const maskToRows = (mask: ArrayLike<number>, width: number, height: number): boolean[][] =>
  toRows(mask, width, height, (v) => v !== 0);

/** Grayscale PNG of 8-bit or 16-bit samples. */
export async function encodePng(
  values: Uint8Array | Uint16Array,
  width: number,
  height: number,
  scale?: number,
): Promise<PngImage> {
  const sixteen = values instanceof Uint16Array;
  const png = await sharp(values, { raw: { width, height, channels: 1 } })
    .toColourspace(sixteen ? 'grey16' : 'b-w')
    .png({ compressionLevel: 6 })
    .toBuffer();
  return {
    format: 'png',
    size: [height, width],
    ...(scale !== undefined ? { scale } : {}),
    data: png.toString('base64'),
  };
}

export const maskToPng = (mask: ArrayLike<number>, width: number, height: number): Promise<PngImage> =>
  encodePng(
    Uint8Array.from(mask, (v) => (v ? 255 : 0)),
    width,
    height,
  );

/** Probabilities 0..1 as a 16-bit PNG: value / 65535 gives the probability back to 1.5e-5. */
export const probsToPng = (probs: ArrayLike<number>, width: number, height: number): Promise<PngImage> =>
  encodePng(
    Uint16Array.from(probs, (p) => Math.round(Math.min(Math.max(p, 0), 1) * 65535)),
    width,
    height,
    1 / 65535,
  );

/** Class ids as an 8-bit PNG (16-bit past 255 classes); the pixel value is the class id. */
export const classMapToPng = (
  classes: ArrayLike<number>,
  width: number,
  height: number,
  numClasses: number,
): Promise<PngImage> =>
  encodePng(numClasses <= 256 ? Uint8Array.from(classes) : Uint16Array.from(classes), width, height);

/** Decodes a PngImage back to its raw samples (tests, JS clients). */
export async function decodePng(img: PngImage): Promise<Uint8Array | Uint16Array> {
  const bytes = Buffer.from(img.data, 'base64');
  const meta = await sharp(bytes).metadata();
  if (meta.depth === 'ushort') {
    const raw = await sharp(bytes).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
    return new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2).slice();
  }
  const raw = await sharp(bytes).extractChannel(0).raw().toBuffer();
  return new Uint8Array(raw);
}

/** Instance masks (row-major 0/1, image size) in the requested encoding. */
export async function encodeMasks(
  masks: Uint8Array[],
  width: number,
  height: number,
  encoding: MaskEncoding,
): Promise<unknown[]> {
  switch (encoding) {
    case 'array':
      return masks.map((m) => maskToRows(m, width, height));
    case 'rle':
      return masks.map((m) => encodeRle(m, width, height));
    case 'png':
      return Promise.all(masks.map((m) => maskToPng(m, width, height)));
  }
}
