import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageSize } from 'image-size';
import { checkImageHeader } from '../../api/input-validation.js';
import { IMAGE_HEADER_BYTES, readImageHeader, readImageHeaderOfBase64 } from '../../shared/image-header.js';
import { imagePixelsOf } from '../../worker/image-weight.js';
import { craftedJpeg } from '../helpers/crafted-jpeg.js';

const LIMITS = { maxImageBytes: 20 * 1024 * 1024, maxImagePixels: 40_000_000 };

async function noisy(width: number, height: number, format: 'tiff' | 'jpeg' | 'png' | 'webp' | 'gif') {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

describe('the bounded image header read', () => {
  it('refuses a JPEG whose frame header is past the first 64 KiB (415), which the unbounded walk accepted', async () => {
    const crafted = craftedJpeg(4 * 1024 * 1024);
    // What the unbounded read said: a 64×64 JPEG.
    expect(imageSize(crafted)).toMatchObject({ width: 64, height: 64 });
    expect(() => readImageHeader(crafted)).toThrow();
    await expect(checkImageHeader(crafted.toString('base64'), LIMITS)).rejects.toMatchObject({
      kind: 'UNSUPPORTED_IMAGE_FORMAT',
      httpStatus: 415,
      message: new RegExp(`first ${IMAGE_HEADER_BYTES} bytes`),
    });
    expect(imagePixelsOf({ image: crafted.toString('base64') })).toBeNull();
    // The same layout with the frame header inside the window is read.
    expect(readImageHeader(craftedJpeg(32 * 1024))).toMatchObject({ width: 64, height: 64 });
  });

  it('reads TIFFs whose directory follows the pixels (as libtiff writes them), from bytes and from base64', async () => {
    for (const [w, h] of [
      [600, 400],
      [601, 400],
      [602, 401],
      [720, 481],
    ]) {
      const tiff = await noisy(w, h, 'tiff');
      const ifd = tiff.readUInt32LE(4);
      expect(ifd).toBeGreaterThan(IMAGE_HEADER_BYTES);
      expect(readImageHeader(tiff)).toMatchObject({ width: w, height: h });
      expect(readImageHeaderOfBase64(tiff.toString('base64'))).toMatchObject({ width: w, height: h });
      await expect(checkImageHeader(tiff.toString('base64'), LIMITS)).resolves.toEqual({ width: w, height: h });
    }
  });

  it('reads every allowed format past the window size as before', async () => {
    for (const format of ['jpeg', 'png', 'webp', 'gif'] as const) {
      const bytes = await noisy(600, 400, format);
      expect(readImageHeader(bytes)).toMatchObject({ width: 600, height: 400 });
      expect(readImageHeaderOfBase64(bytes.toString('base64'))).toMatchObject({ width: 600, height: 400 });
    }
  });
});
