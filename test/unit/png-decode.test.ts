/**
 * The JavaScript PNG path (worker/tasks/png-decode.ts) against sharp: every colour type and bit
 * depth it takes decodes to exactly sharp's pixels; what it declines or pngjs refuses ends as
 * sharp's own outcome, pixels or error.
 */
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePlainPng, isPlainSmallPng, JS_PNG_MAX_PIXELS } from '../../worker/tasks/png-decode.js';
import { decodeImage, decodeWithSharp } from '../../worker/tasks/image-preprocess.js';
import { b64 } from '../helpers/images.js';

const limits = { maxImageBytes: 10_000_000, maxImagePixels: 10_000_000 };

// ---- a minimal PNG writer: any colour type, bit depth, filter and chunk, so the corpus is ours ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** A seeded generator, so a failure names its case. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface PngCase {
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  /** Row bytes (filter byte first) before compression; random when absent. */
  rows?: Buffer;
  plte?: Buffer;
  trns?: Buffer;
  extraChunks?: Buffer[];
  interlace?: number;
}

function rowBytes(c: PngCase): number {
  return Math.ceil((c.width * CHANNELS[c.colorType] * c.bitDepth) / 8);
}

/**
 * Random rows, each with a random filter type: any bytes under any filter are a valid image.
 * Bytes drawn from a small `range` make the Paeth predictor's ties common.
 */
function randomRows(c: PngCase, next: () => number, range = 256): Buffer {
  const stride = rowBytes(c) + 1;
  const rows = Buffer.alloc(stride * c.height);
  for (let y = 0; y < c.height; y++) {
    rows[y * stride] = Math.floor(next() * 5);
    for (let x = 1; x < stride; x++) rows[y * stride + x] = Math.floor(next() * range);
  }
  return rows;
}

function encodePng(c: PngCase, next: () => number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(c.width, 0);
  ihdr.writeUInt32BE(c.height, 4);
  ihdr.set([c.bitDepth, c.colorType, 0, 0, c.interlace ?? 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(c.extraChunks ?? []),
    ...(c.plte ? [chunk('PLTE', c.plte)] : []),
    ...(c.trns ? [chunk('tRNS', c.trns)] : []),
    chunk('IDAT', zlib.deflateSync(c.rows ?? randomRows(c, next))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Every colour type and bit depth pngjs takes, with and without tRNS. */
function plainCases(seed: number, range = 256): { name: string; png: Buffer }[] {
  const next = rng(seed);
  const out: { name: string; png: Buffer }[] = [];
  const combos: [number, number[]][] = [
    [0, [1, 2, 4, 8]],
    [2, [8]],
    [3, [1, 2, 4, 8]],
    [4, [8]],
    [6, [8]],
  ];
  for (const [colorType, depths] of combos)
    for (const bitDepth of depths)
      for (const withTrns of colorType === 4 || colorType === 6 ? [false] : [false, true]) {
        const width = 1 + Math.floor(next() * 40);
        const height = 1 + Math.floor(next() * 24);
        const c: PngCase = { width, height, colorType, bitDepth };
        if (colorType === 3) {
          const entries = 2 ** bitDepth;
          c.plte = Buffer.from(Array.from({ length: entries * 3 }, () => Math.floor(next() * 256)));
          // Every index in range: with a full palette, any bits are a valid index.
          if (withTrns)
            c.trns = Buffer.from(Array.from({ length: Math.ceil(entries / 2) }, () => Math.floor(next() * 256)));
        }
        // A colour key that occurs: the first pixel's own value (rows are made first, so it can be read back).
        c.rows = randomRows(c, next, range);
        if (withTrns && colorType === 0) {
          const first = c.rows[1] >> (8 - bitDepth);
          c.trns = Buffer.from([0, first]);
        }
        if (withTrns && colorType === 2) c.trns = Buffer.from([0, c.rows[1], 0, c.rows[2], 0, c.rows[3]]);
        // Text and density chunks change no pixel.
        c.extraChunks = [
          chunk('tEXt', Buffer.from('Comment\0a line of text', 'latin1')),
          chunk('pHYs', Buffer.from([0, 0, 11, 19, 0, 0, 11, 19, 1])),
        ];
        out.push({
          name: `type ${colorType} depth ${bitDepth}${withTrns ? ' tRNS' : ''} ${width}×${height}`,
          png: encodePng(c, next),
        });
      }
  return out;
}

/** decodeImage's outcome and sharp's, side by side: equal pixels, or the same error. */
async function outcomes(png: Buffer): Promise<[unknown, unknown]> {
  const settle = (p: Promise<{ rgb: Buffer; width: number; height: number }>) =>
    p.then(
      (d) => ({ width: d.width, height: d.height, rgb: d.rgb.toString('hex') }),
      (err: { kind?: string }) => ({ error: err.kind }),
    );
  return Promise.all([settle(decodeImage(b64(png), limits)), settle(decodeWithSharp(png, limits))]);
}

describe('small plain PNGs decoded in JavaScript', () => {
  it('give exactly sharp’s pixels for every colour type and bit depth, with and without tRNS', async () => {
    for (const [seed, range] of [
      [1, 256],
      [2, 256],
      [3, 4],
      [4, 4],
    ]) {
      for (const { name, png } of plainCases(seed, range)) {
        expect(isPlainSmallPng(png), name).toBe(true);
        expect(decodePlainPng(png), name).not.toBeNull();
        const [ours, sharps] = await outcomes(png);
        expect(ours, name).toEqual(sharps);
        expect(ours, name).not.toHaveProperty('error');
      }
    }
  });

  it('gives the model example (a 360×56 RGBA text line) sharp’s pixels', async () => {
    const fs = await import('node:fs');
    const png = fs.readFileSync(new URL('../../models/text-direction/example.png', import.meta.url));
    expect(isPlainSmallPng(png)).toBe(true);
    const [ours, sharps] = await outcomes(png);
    expect(ours).toEqual(sharps);
  });

  it('leaves to sharp what libvips would treat differently or what is too large for the event loop', async () => {
    const next = rng(7);
    const base = { width: 8, height: 6, colorType: 2, bitDepth: 8 };
    const declined: Record<string, Buffer> = {
      '16-bit': encodePng({ ...base, bitDepth: 16 }, next),
      interlaced: encodePng({ ...base, interlace: 1 }, next),
      'an ICC profile': encodePng(
        {
          ...base,
          extraChunks: [
            chunk('iCCP', Buffer.concat([Buffer.from('x\0\0', 'latin1'), zlib.deflateSync(Buffer.alloc(16))])),
          ],
        },
        next,
      ),
      'an eXIf orientation': encodePng(
        { ...base, extraChunks: [chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\0', 'latin1'))] },
        next,
      ),
      'a gAMA chunk': encodePng({ ...base, extraChunks: [chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]))] }, next),
      'more pixels than the limit': encodePng({ ...base, width: JS_PNG_MAX_PIXELS / 64 + 1, height: 64 }, next),
      'bytes after IEND': Buffer.concat([encodePng(base, next), Buffer.from('trailing')]),
    };
    for (const [name, png] of Object.entries(declined)) {
      expect(isPlainSmallPng(png), name).toBe(false);
      const [ours, sharps] = await outcomes(png);
      expect(ours, name).toEqual(sharps);
    }
    // The caller's pixel limit is honoured too: sharp gives its error.
    const png = encodePng(base, next);
    expect(isPlainSmallPng(png, 47)).toBe(false);
    await expect(decodeImage(b64(png), { ...limits, maxImagePixels: 47 })).rejects.toMatchObject({
      kind: 'IMAGE_TOO_LARGE',
    });
  });

  it('hands a broken PNG (bad CRC, short, long or trailing image data, bad filter or index) to sharp, whose outcome stands', async () => {
    const next = rng(11);
    const base: PngCase = { width: 9, height: 7, colorType: 6, bitDepth: 8 };
    const good = encodePng(base, next);
    const badCrc = Buffer.from(good);
    badCrc[badCrc.length - 13] ^= 0xff; // the IDAT chunk's CRC (IEND is the last 12 bytes)
    const rows = randomRows(base, next);
    const broken: Record<string, Buffer> = {
      'a bad IDAT CRC': badCrc,
      'a row short': encodePng({ ...base, rows: rows.subarray(0, rows.length - 10) }, next),
      'a row extra': encodePng({ ...base, rows: Buffer.concat([rows, rows.subarray(0, 37)]) }, next),
      'a bad filter type': encodePng({ ...base, rows: Buffer.concat([Buffer.from([9]), rows.subarray(1)]) }, next),
      'bytes after the zlib stream': (() => {
        const c = { ...base, rows };
        const png = encodePng(c, next);
        const idat = Buffer.concat([zlib.deflateSync(rows), Buffer.from([1, 2, 3])]);
        return Buffer.concat([png.subarray(0, 33), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
      })(),
      'a palette index past the palette': encodePng(
        {
          width: 4,
          height: 1,
          colorType: 3,
          bitDepth: 8,
          plte: Buffer.alloc(6, 9),
          rows: Buffer.from([0, 0, 1, 2, 1]),
        },
        next,
      ),
      'a bad text chunk CRC': (() => {
        const png = encodePng({ ...base, extraChunks: [chunk('tEXt', Buffer.from('k\0v', 'latin1'))] }, next);
        png[33 + 8 + 3] ^= 0xff; // the tEXt chunk right after IHDR: its CRC
        return png;
      })(),
    };
    for (const [name, png] of Object.entries(broken)) {
      // A bad CRC is caught by the layout walk; the rest only inside the decode.
      expect(isPlainSmallPng(png), name).toBe(!name.includes('CRC'));
      expect(decodePlainPng(png), name).toBeNull();
      const [ours, sharps] = await outcomes(png);
      expect(ours, name).toEqual(sharps);
    }
  });

  it('never throws and always ends as sharp does on image data damaged behind valid CRCs (300 mutants)', async () => {
    const next = rng(23);
    const ended = { decoded: 0, refused: 0 };
    for (let i = 0; i < 300; i++) {
      // Damage the compressed image data or the rows behind it, then fix the CRC: only the decode can tell.
      const base: PngCase = { width: 6 + (i % 7), height: 5, colorType: [0, 2, 3, 4, 6][i % 5], bitDepth: 8 };
      if (base.colorType === 3) base.plte = Buffer.from(Array.from({ length: 48 }, () => Math.floor(next() * 256)));
      let rows = randomRows(base, next);
      let idat = zlib.deflateSync(rows);
      if (i % 2 === 0) {
        rows = Buffer.from(rows);
        rows[Math.floor(next() * rows.length)] = Math.floor(next() * 256); // a filter type or index gone wrong
        idat = zlib.deflateSync(rows);
      } else {
        idat = Buffer.from(idat);
        idat[Math.floor(next() * idat.length)] ^= 1 << Math.floor(next() * 8); // a flipped bit in the stream
      }
      const sample = encodePng({ ...base, rows }, next);
      const head = sample.subarray(0, sample.indexOf('IDAT', 0, 'latin1') - 4);
      const mutant = Buffer.concat([head, chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
      expect(() => decodePlainPng(mutant), `mutant ${i}`).not.toThrow();
      const [ours, sharps] = await outcomes(mutant);
      expect(ours, `mutant ${i}`).toEqual(sharps);
      ended['error' in (ours as object) ? 'refused' : 'decoded'] += 1;
    }
    // Both endings occur: damage that still decodes (a changed pixel) and damage that does not.
    expect(ended.decoded).toBeGreaterThan(30);
    expect(ended.refused).toBeGreaterThan(30);
  });
});
