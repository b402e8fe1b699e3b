/**
 * loadImageTensor: page-sized images decode and resize in one sharp pipeline (shrink on load for
 * JPEG and WebP). Its tensor and geometry are those of the two-step path (decodeImage, then
 * imageToTensor) up to libvips' rounding; EXIF orientation, alpha and the limits still apply.
 */
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImagePreprocessSchema } from '../../shared/manifest.js';
import { decodeImage, imageToTensor, loadImageTensor } from '../../worker/tasks/image-preprocess.js';
import { b64 } from '../helpers/images.js';

const limits = { maxImageBytes: 50_000_000, maxImagePixels: 50_000_000 };
const pre = ImagePreprocessSchema.parse({
  resize: { mode: 'limit-side', max_side: 960, multiple_of: 32 },
  channel_order: 'BGR',
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
});

/** A text line's preprocessing (PP-OCR's direction classifier): fixed height 48, at most 192 wide. */
const line = ImagePreprocessSchema.parse({
  resize: { mode: 'fixed-height', height: 48, max_width: 192 },
  channel_order: 'BGR',
  scale: 1 / 255,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
});

/** A page-like picture: horizontal and vertical gradients with dark bars (text lines). */
async function page(width: number, height: number): Promise<Sharp> {
  const raw = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const bar = y % 40 < 12 && x % 200 < 160;
      raw[i] = bar ? 20 : (x * 255) / width;
      raw[i + 1] = bar ? 20 : (y * 255) / height;
      raw[i + 2] = bar ? 30 : 200;
      raw[i + 3] = x < 40 ? 0 : 255; // a transparent strip: flattened on white
    }
  return sharp(raw, { raw: { width, height, channels: 4 } });
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

describe('loadImageTensor', () => {
  it('gives a page-sized PNG the two-step tensor and geometry', async () => {
    const png = await (await page(1280, 960)).png().toBuffer();
    const one = await loadImageTensor(b64(png), limits, pre);
    const two = await imageToTensor(await decodeImage(b64(png), limits), pre);
    expect(one.dims).toEqual([3, 736, 960]);
    expect(one.dims).toEqual(two.dims);
    expect(one.geometry).toEqual(two.geometry);
    // Normalised units (1/255/std ≈ 0.017 per level): within a level or so on average.
    expect(meanAbsDiff(one.data, two.data)).toBeLessThan(0.03);
  });

  it('shrinks a large JPEG on load and applies its EXIF orientation', async () => {
    const jpeg = await (
      await page(3000, 2000)
    )
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 92 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const one = await loadImageTensor(b64(jpeg), limits, pre);
    const two = await imageToTensor(await decodeImage(b64(jpeg), limits), pre);
    // Orientation 6: the 3000 × 2000 picture is 2000 × 3000 upright → 640 × 960 tensor.
    expect(one.geometry).toMatchObject({ imageWidth: 2000, imageHeight: 3000, tensorWidth: 640, tensorHeight: 960 });
    expect(one.geometry).toEqual(two.geometry);
    expect(meanAbsDiff(one.data, two.data)).toBeLessThan(0.05);
  });

  it('gives small text lines, EXIF-rotated or enlarged, exactly the two-step tensor', async () => {
    // Orientation 6 turns the stored 400 × 60 line into a 60 × 400 upright one (a shrink either way).
    const rotated = await (
      await page(400, 60)
    )
      .flatten({ background: '#ffffff' })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    // 40 × 20 is enlarged to height 48 (sharp's pipeline); 360 × 56 shrinks (the one-pass resampler).
    const enlarged = await (await page(40, 20)).png().toBuffer();
    const shrunk = await (await page(360, 56)).png().toBuffer();
    for (const [image, width, height] of [
      [rotated, 60, 400],
      [enlarged, 40, 20],
      [shrunk, 360, 56],
    ] as const) {
      const one = await loadImageTensor(b64(image), limits, line);
      const two = await imageToTensor(await decodeImage(b64(image), limits), line);
      expect(one.geometry).toMatchObject({ imageWidth: width, imageHeight: height, tensorHeight: 48 });
      expect(one.geometry).toEqual(two.geometry);
      expect(meanAbsDiff(one.data, two.data)).toBeLessThan(0.02);
    }
  });

  it('reads an opaque RGBA text line without flattening it: exactly the floats of its flattened RGB', async () => {
    const [width, height] = [360, 56];
    const raw = Buffer.alloc(width * height * 4);
    for (let i = 0; i < raw.length; i++) raw[i] = i % 4 === 3 ? 255 : (i * 31 + ((i * i) % 23)) % 256;
    const opaque = await sharp(raw, { raw: { width, height, channels: 4 } })
      .png()
      .toBuffer();
    // The same line with one translucent pixel: flattened on white, as before.
    raw[(7 * width + 100) * 4 + 3] = 128;
    const translucent = await sharp(raw, { raw: { width, height, channels: 4 } })
      .png()
      .toBuffer();
    for (const image of [opaque, translucent]) {
      const one = await loadImageTensor(b64(image), limits, line);
      const two = await imageToTensor(await decodeImage(b64(image), limits), line);
      expect(one.geometry).toEqual(two.geometry);
      expect(one.data.length).toBe(two.data.length);
      expect(one.data.findIndex((v, i) => v !== two.data[i])).toBe(-1); // -1: every float the same
    }
  });

  it('keeps the pixel limit and refuses undecodable bytes with the spec errors', async () => {
    const png = await (await page(1280, 960)).png().toBuffer();
    await expect(loadImageTensor(b64(png), { ...limits, maxImagePixels: 1_000_000 }, pre)).rejects.toMatchObject({
      kind: 'IMAGE_TOO_LARGE',
    });
    const truncated = png.subarray(0, png.length / 2);
    await expect(loadImageTensor(b64(truncated), limits, pre)).rejects.toMatchObject({ kind: 'INVALID_IMAGE' });
  });
});
