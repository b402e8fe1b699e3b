/**
 * Small, plain PNGs decoded on the worker's event loop instead of through sharp.
 *
 * Why: for a small image sharp's fixed cost dominates. A 360×56 RGBA text line cost 0.94 ms of
 * CPU and 1.07 ms of wall time per decode through sharp (its options marshalled on the event loop,
 * then a hop to libuv's pool and libvips' threads and back); a 1×1 PNG cost 0.68 ms. Here the
 * inflate is node's zlib (native, 0.08 ms for the line) and the rest is one pass in JavaScript.
 *
 * Why not pngjs: it decodes a file whose image data is short, padding it with zeros, where libvips
 * refuses the file; matching sharp's verdicts would mean inflating twice. The subset decoded here
 * is small and fully specified (PNG §9 filters, §11.3 tRNS), and test/unit/png-decode.test.ts
 * holds it to sharp's pixels over every colour type and bit depth, and to sharp's outcome over
 * broken files.
 *
 * Only PNGs whose decode cannot differ from libvips' take this path: 8-bit or lower, not
 * interlaced, at most JS_PNG_MAX_PIXELS, every CRC right, and no chunk libvips would act on (an
 * ICC profile is applied by sharp's sRGB conversion, eXIf carries an orientation, APNG's frames
 * are another page). Anything else, and anything odd inside (short, long or trailing image data, a
 * bad filter type, a palette index out of range), returns null: the caller then uses sharp, which
 * decodes the file or gives the error it always gave.
 */
import zlib from 'node:zlib';

/**
 * The largest image decoded here, in pixels: 64 Ki pixels of RGBA is about 1 ms on the event loop;
 * larger images go to sharp, off the loop.
 */
export const JS_PNG_MAX_PIXELS = 64 * 1024;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Chunks that cannot change the pixels libvips decodes: the image data and what only describes it. */
const PIXEL_NEUTRAL_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND', 'pHYs', 'tEXt', 'zTXt', 'iTXt', 'tIME']);

/** Samples per pixel of each colour type: grey, RGB, palette index, grey + alpha, RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Partial<Record<number, number[]>> = { 0: [1, 2, 4, 8], 2: [8], 3: [1, 2, 4, 8], 4: [8], 6: [8] };

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

function crc32(bytes: Uint8Array, from: number, to: number): number {
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface PlainPng {
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  idat: Buffer[];
  plte?: Buffer;
  trns?: Buffer;
}

/** The file's layout when it is a PNG this module decodes (see the header comment), else null. */
function plainPngLayout(bytes: Buffer, maxPixels: number): PlainPng | null {
  if (bytes.length < SIGNATURE.length + 25 || !bytes.subarray(0, 8).equals(SIGNATURE)) return null;
  let png: PlainPng | null = null;
  for (let at = SIGNATURE.length; at + 12 <= bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    const data = at + 8;
    const end = data + length + 4;
    if (end > bytes.length || !PIXEL_NEUTRAL_CHUNKS.has(type)) return null;
    if (crc32(bytes, at + 4, data + length) !== bytes.readUInt32BE(data + length)) return null;
    if (!png) {
      if (type !== 'IHDR' || length !== 13) return null;
      const [width, height] = [bytes.readUInt32BE(data), bytes.readUInt32BE(data + 4)];
      const [bitDepth, colorType, compression, filter, interlace] = bytes.subarray(data + 8, data + 13);
      if (width === 0 || height === 0 || width * height > Math.min(maxPixels, JS_PNG_MAX_PIXELS)) return null;
      if (!DEPTHS[colorType]?.includes(bitDepth) || compression !== 0 || filter !== 0 || interlace !== 0) return null;
      png = { width, height, colorType, bitDepth, idat: [] };
    } else if (type === 'IHDR') return null;
    else if (type === 'PLTE') png.plte = bytes.subarray(data, data + length);
    else if (type === 'tRNS') png.trns = bytes.subarray(data, data + length);
    else if (type === 'IDAT') png.idat.push(bytes.subarray(data, data + length));
    else if (type === 'IEND') return end === bytes.length && png.idat.length > 0 ? png : null;
    at = end;
  }
  return null;
}

/** Whether the file is a PNG this module decodes, of at most `maxPixels` (and JS_PNG_MAX_PIXELS) pixels. */
export function isPlainSmallPng(bytes: Buffer, maxPixels = JS_PNG_MAX_PIXELS): boolean {
  return plainPngLayout(bytes, maxPixels) !== null;
}

export interface DecodedPng {
  /** Interleaved 8-bit pixels: RGB, or RGBA when the file carries alpha (an alpha channel or tRNS). */
  pixels: Buffer;
  channels: 3 | 4;
  width: number;
  height: number;
}

/**
 * The image as libvips decodes it (grey expanded to RGB, low bit depths scaled to 8 bits, palette
 * and tRNS resolved), or null when the file is not one this module decodes: the caller uses sharp.
 */
export function decodePlainPng(bytes: Buffer, maxPixels = JS_PNG_MAX_PIXELS): DecodedPng | null {
  const png = plainPngLayout(bytes, maxPixels);
  if (!png) return null;
  const { width, height, colorType, bitDepth } = png;
  const rowBytes = Math.ceil((width * CHANNELS[colorType] * bitDepth) / 8);
  const expected = (rowBytes + 1) * height;
  const compressed = png.idat.length === 1 ? png.idat[0] : Buffer.concat(png.idat);
  let raw: Buffer;
  try {
    // One output chunk of the expected size: zlib's default 16 KiB chunks were concatenated after
    // the inflate (an 80 KB line: 47 µs → 25 µs per inflate, measured). One byte over, so data
    // that runs long still trips maxOutputLength.
    const options = {
      maxOutputLength: expected,
      chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, expected + 1),
      info: true,
    };
    const { buffer, engine } = zlib.inflateSync(compressed, options) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    // Short image data, or bytes after the zlib stream: sharp's verdict, not ours.
    if (buffer.length !== expected || engine.bytesWritten !== compressed.length) return null;
    raw = buffer;
  } catch {
    return null;
  }
  if (!unfilter(raw, rowBytes, height, Math.max(1, (CHANNELS[colorType] * bitDepth) >> 3))) return null;
  return expand(png, raw, rowBytes);
}

/** PNG §9 filters undone in place; false on an unknown filter type. */
function unfilter(raw: Buffer, rowBytes: number, height: number, bpp: number): boolean {
  const stride = rowBytes + 1;
  for (let y = 0; y < height; y++) {
    const row = y * stride + 1;
    const up = row - stride; // the row above (y > 0 only)
    const type = raw[row - 1];
    if (type === 0) continue;
    if (type === 1) {
      for (let i = row + bpp; i < row + rowBytes; i++) raw[i] = (raw[i] + raw[i - bpp]) & 0xff;
    } else if (type === 2) {
      if (y > 0) for (let i = row; i < row + rowBytes; i++) raw[i] = (raw[i] + raw[i - stride]) & 0xff;
    } else if (type === 3) {
      for (let x = 0; x < rowBytes; x++) {
        const left = x >= bpp ? raw[row + x - bpp] : 0;
        const above = y > 0 ? raw[up + x] : 0;
        raw[row + x] = (raw[row + x] + ((left + above) >> 1)) & 0xff;
      }
    } else if (type === 4) {
      for (let x = 0; x < rowBytes; x++) {
        const a = x >= bpp ? raw[row + x - bpp] : 0;
        const b = y > 0 ? raw[up + x] : 0;
        const c = x >= bpp && y > 0 ? raw[up + x - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        raw[row + x] = (raw[row + x] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
    } else return false;
  }
  return true;
}

/** Unfiltered rows → interleaved RGB or RGBA; null on a palette index out of range. */
function expand(png: PlainPng, raw: Buffer, rowBytes: number): DecodedPng | null {
  const { width, height, colorType, bitDepth, trns } = png;
  const stride = rowBytes + 1;
  const hasAlpha = colorType === 4 || colorType === 6 || trns !== undefined;
  const channels = hasAlpha ? 4 : 3;
  const out = Buffer.allocUnsafe(width * height * channels);
  const result: DecodedPng = { pixels: out, channels, width, height };
  if (colorType === 6) {
    for (let y = 0; y < height; y++) raw.copy(out, y * rowBytes, y * stride + 1, (y + 1) * stride);
    return result;
  }
  let o = 0;
  if (colorType === 2) {
    // tRNS for RGB: one 16-bit sample per channel; a pixel equal to it is transparent.
    const key = trns && trns.length === 6 ? [trns.readUInt16BE(0), trns.readUInt16BE(2), trns.readUInt16BE(4)] : null;
    if (trns && !key) return null;
    for (let y = 0; y < height; y++)
      for (let i = y * stride + 1, end = i + rowBytes; i < end; i += 3) {
        const [r, g, b] = [raw[i], raw[i + 1], raw[i + 2]];
        out[o++] = r;
        out[o++] = g;
        out[o++] = b;
        if (key) out[o++] = r === key[0] && g === key[1] && b === key[2] ? 0 : 255;
      }
    return result;
  }
  if (colorType === 4) {
    for (let y = 0; y < height; y++)
      for (let i = y * stride + 1, end = i + rowBytes; i < end; i += 2) {
        out[o++] = raw[i];
        out[o++] = raw[i];
        out[o++] = raw[i];
        out[o++] = raw[i + 1];
      }
    return result;
  }
  // Grey or palette, 1 to 8 bits per sample, packed from the high bits.
  const max = (1 << bitDepth) - 1;
  const palette = png.plte;
  const entries = palette ? Math.floor(palette.length / 3) : 0;
  if (colorType === 3 && (!palette || entries === 0 || (trns && trns.length > entries))) return null;
  if (colorType === 0 && trns && trns.length !== 2) return null;
  const greyKey = colorType === 0 && trns ? trns.readUInt16BE(0) : -1;
  for (let y = 0; y < height; y++) {
    const row = y * stride + 1;
    for (let x = 0; x < width; x++) {
      const bit = x * bitDepth;
      const v = (raw[row + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & max;
      if (colorType === 0) {
        const grey = (v * 255) / max;
        out[o++] = grey;
        out[o++] = grey;
        out[o++] = grey;
        if (hasAlpha) out[o++] = v === greyKey ? 0 : 255;
      } else {
        if (v >= entries) return null;
        out[o++] = palette![v * 3];
        out[o++] = palette![v * 3 + 1];
        out[o++] = palette![v * 3 + 2];
        if (hasAlpha) out[o++] = v < trns!.length ? trns![v] : 255;
      }
    }
  }
  return result;
}
