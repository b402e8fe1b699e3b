import path from 'node:path';
import sharp from 'sharp';
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
});
