import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import wabtInit from 'wabt';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { resampleToTensor } from '../../worker/tasks/resample.js';

async function decoded(file: string) {
  const { data, info } = await sharp(path.join(REPO_ROOT, file))
    .flatten({ background: '#fff' })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

const identity = [0, 1, 2].map((src) => ({ src, mul: 1, add: 0 }));

/** The whole image resized to w × h, filling a tensor of that size. */
const wholeImage = (w: number, h: number) => ({
  resizeWidth: w,
  resizeHeight: h,
  cropLeft: 0,
  cropTop: 0,
  copyWidth: w,
  copyHeight: h,
  tensorWidth: w,
  tensorHeight: h,
  padLeft: 0,
  padTop: 0,
});

describe('resampleToTensor (one-pass shrink + normalise)', () => {
  it.each([
    [192, 48],
    [100, 20],
    [360, 28],
  ])("matches sharp's linear resize of a text line to %i × %i within rounding", async (w, h) => {
    const img = await decoded('models/text-direction/example.png');
    const ref = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(w, h, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    const out = new Float32Array(3 * w * h);
    resampleToTensor(img.rgb, img.width, img.height, wholeImage(w, h), identity, out);
    let worst = 0;
    for (let i = 0; i < w * h; i++)
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(out[c * w * h + i] - ref[i * 3 + c]));
    expect(worst).toBeLessThanOrEqual(2);
  });

  it('writes only its window (crop, pad) and applies channel order and normalisation', () => {
    // A 4 × 2 orange image halved to 2 × 1 and placed at (1, 1) of a 4 × 3 tensor, as BGR.
    const rgb = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => [255, 128, 0][i % 3]);
    const out = new Float32Array(3 * 12).fill(-9);
    const bgr = [2, 1, 0].map((src) => ({ src, mul: 1 / 255, add: -0.5 }));
    resampleToTensor(
      rgb,
      4,
      2,
      {
        resizeWidth: 2,
        resizeHeight: 1,
        cropLeft: 0,
        cropTop: 0,
        copyWidth: 2,
        copyHeight: 1,
        tensorWidth: 4,
        tensorHeight: 3,
        padLeft: 1,
        padTop: 1,
      },
      bgr,
      out,
    );
    for (const x of [1, 2]) {
      expect([0, 1, 2].map((c) => out[c * 12 + 4 + x])).toEqual(
        [-0.5, 128 / 255 - 0.5, 0.5].map((v) => expect.closeTo(v, 5)),
      );
    }
    expect(out.filter((v) => v === -9)).toHaveLength(36 - 6); // nothing outside the window touched
  });

  it('gives a call the same floats whatever the calls before it resized (its scratch rows are reused)', () => {
    const image = (w: number, h: number, seed: number) =>
      Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 31 + seed * 7 + ((i * i) % 13)) % 256);
    const bgr = [2, 1, 0].map((src, c) => ({ src, mul: 1 / (100 + c), add: c - 1 }));
    const small = image(90, 30, 1);
    const run = (rgb: Uint8Array, w: number, h: number, tw: number, th: number) => {
      const out = new Float32Array(3 * tw * th);
      resampleToTensor(rgb, w, h, wholeImage(tw, th), bgr, out);
      return out;
    };
    const first = run(small, 90, 30, 40, 12);
    // A larger resize leaves its rows behind in the scratch; a smaller one after it must not read them.
    run(image(400, 120, 2), 400, 120, 300, 100);
    expect(Array.from(run(small, 90, 30, 40, 12))).toEqual(Array.from(first));
    run(image(7, 3, 3), 7, 3, 5, 2);
    expect(Array.from(run(small, 90, 30, 40, 12))).toEqual(Array.from(first));
  });
  it('reads RGBA with the alpha byte skipped: the same floats as the RGB image, whatever the alpha', () => {
    const [w, h] = [97, 31];
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 53 + ((i * i) % 17)) % 256);
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
    const bgr = [2, 1, 0].map((src, c) => ({ src, mul: 1 / (100 + c), add: c - 1 }));
    for (const [tw, th] of [
      [40, 12],
      [97, 20],
      [33, 31],
    ]) {
      const fromRgb = new Float32Array(3 * tw * th);
      const fromRgba = new Float32Array(3 * tw * th);
      resampleToTensor(rgb, w, h, wholeImage(tw, th), bgr, fromRgb);
      resampleToTensor(rgba, w, h, wholeImage(tw, th), bgr, fromRgba, 4);
      expect(Array.from(fromRgba)).toEqual(Array.from(fromRgb));
    }
  });

  it('agrees with a plain triangle-filter reference, in float64, for shrinks from 1× to 40× with crop and pad', () => {
    const cases: [number, number, number, number][] = [
      [360, 56, 192, 48],
      [97, 31, 97, 20],
      [400, 300, 10, 7],
      [1000, 40, 25, 40],
      [64, 64, 63, 1],
    ];
    for (const [w, h, tw, th] of cases) {
      const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + ((i * i) % 251)) % 256);
      // The window: the resized image minus one column and row at the top left, 2 pixels in.
      const target = {
        resizeWidth: tw,
        resizeHeight: th,
        cropLeft: tw > 1 ? 1 : 0,
        cropTop: th > 1 ? 1 : 0,
        copyWidth: tw > 1 ? tw - 1 : 1,
        copyHeight: th > 1 ? th - 1 : 1,
        tensorWidth: tw + 3,
        tensorHeight: th + 3,
        padLeft: 2,
        padTop: 2,
      };
      const bgr = [2, 1, 0].map((src, c) => ({ src, mul: 1 / (100 + c), add: c - 1 }));
      const out = new Float32Array(3 * target.tensorWidth * target.tensorHeight).fill(-7);
      resampleToTensor(rgb, w, h, target, bgr, out);
      const plane = target.tensorWidth * target.tensorHeight;
      let worst = 0;
      let untouched = 0;
      for (let y = 0; y < target.tensorHeight; y++)
        for (let x = 0; x < target.tensorWidth; x++) {
          const [ix, iy] = [x - target.padLeft, y - target.padTop];
          const inside = ix >= 0 && iy >= 0 && ix < target.copyWidth && iy < target.copyHeight;
          for (let c = 0; c < 3; c++) {
            const got = out[c * plane + y * target.tensorWidth + x];
            if (!inside) {
              if (got === -7) untouched++;
              continue;
            }
            const grey = triangleResize(rgb, w, h, tw, th, ix + target.cropLeft, iy + target.cropTop, bgr[c].src);
            worst = Math.max(worst, Math.abs((got - bgr[c].add) / bgr[c].mul - grey));
          }
        }
      expect(worst, `${w}×${h} → ${tw}×${th}`).toBeLessThan(1e-3);
      expect(untouched).toBe(3 * (plane - target.copyWidth * target.copyHeight));
    }
  });

  it('takes the largest images the worker sends it (256 Ki pixels, any reduction)', () => {
    const identityOf = (tw: number, th: number, w: number, h: number) => {
      const rgb = new Uint8Array(w * h * 4).fill(200);
      const out = new Float32Array(3 * tw * th);
      resampleToTensor(rgb, w, h, wholeImage(tw, th), identity, out, 4);
      return out;
    };
    for (const [w, h, tw, th] of [
      [512, 512, 511, 511],
      [262144, 1, 1, 1],
      [1, 262144, 1, 1],
      [4096, 64, 3, 2],
    ]) {
      const out = identityOf(tw, th, w, h);
      const worst = out.reduce((a, v) => Math.max(a, Math.abs(v - 200)), 0);
      expect(worst, `${w}×${h} → ${tw}×${th}`).toBeLessThan(1e-2);
    }
  });

  it('refuses a normalisation that does not map the three channels one to one', () => {
    const rgb = new Uint8Array(4 * 4 * 3);
    const grey = [0, 0, 0].map((src) => ({ src, mul: 1, add: 0 }));
    expect(() => resampleToTensor(rgb, 4, 4, wholeImage(2, 2), grey, new Float32Array(12))).toThrow(/one to one/);
  });

  it('runs the assembly of resample.wat (npm run build:wasm writes resample.wasm from it)', async () => {
    const dir = path.join(REPO_ROOT, 'worker', 'tasks');
    const wabt = await wabtInit();
    const module = wabt.parseWat('resample.wat', fs.readFileSync(path.join(dir, 'resample.wat'), 'utf8'), {
      simd: true,
    });
    const assembled = Buffer.from(module.toBinary({}).buffer);
    module.destroy();
    expect(Buffer.compare(assembled, fs.readFileSync(path.join(dir, 'resample.wasm')))).toBe(0);
  });
});

/**
 * Channel `ch` of output pixel (ox, oy) of `rgb` (w × h, 3 channels) resized to tw × th by the
 * linear kernel's definition: a triangle of support max(1, scale) around each pixel centre,
 * edges clamped, weights normalised; rows first, in float64.
 */
function triangleResize(
  rgb: Uint8Array,
  w: number,
  h: number,
  tw: number,
  th: number,
  ox: number,
  oy: number,
  ch: number,
) {
  const weightsAlong = (src: number, dst: number, o: number) => {
    const scale = src / dst;
    const support = Math.max(1, scale);
    const centre = (o + 0.5) * scale - 0.5;
    const taps: [number, number][] = [];
    for (let s = Math.floor(centre - support) + 1; s < centre + support; s++) {
      const weight = Math.max(0, 1 - Math.abs(s - centre) / support);
      if (weight > 0) taps.push([Math.min(src - 1, Math.max(0, s)), weight]);
    }
    const sum = taps.reduce((a, [, wt]) => a + wt, 0);
    return taps.map(([s, wt]) => [s, wt / sum] as const);
  };
  let value = 0;
  for (const [sy, wy] of weightsAlong(h, th, oy)) {
    let row = 0;
    for (const [sx, wx] of weightsAlong(w, tw, ox)) row += rgb[(sy * w + sx) * 3 + ch] * wx;
    value += row * wy;
  }
  return value;
}
