/** Only allow-listed image formats reach a decoder, in the API's header check and in the worker. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { checkImageHeader } from '../../api/input-validation.js';
import { allowedFormatOf, requireAllowedFormat } from '../../shared/image-formats.js';
import { decodeImage } from '../../worker/tasks/image-preprocess.js';

const limits = { maxImageBytes: 10_000_000, maxImagePixels: 100_000_000 };
// 4000×4000 from 200 bytes: rendering it costs seconds of CPU (the attack this guards against).
const svgBomb = Buffer.from(
  `<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><filter id="f"><feGaussianBlur stdDeviation="200"/></filter><rect width="4000" height="4000" filter="url(#f)"/></svg>`,
);
const b64 = (b: Buffer) => b.toString('base64');

describe('image format allow-list', () => {
  it('recognises JPEG, PNG, WebP, GIF and TIFF by their leading bytes', async () => {
    const base = sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } });
    for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const) {
      const bytes = await base.clone().toFormat(format).toBuffer();
      expect(allowedFormatOf(bytes)).toBe(format);
      await expect(decodeImage(b64(bytes), limits)).resolves.toMatchObject({ width: 8, height: 8 });
      await expect(
        checkImageHeader(b64(bytes), {
          maxImageBytes: limits.maxImageBytes,
          maxImagePixels: limits.maxImagePixels,
        }),
      ).resolves.toEqual({ width: 8, height: 8 });
    }
  });

  it('refuses SVG (with or without an XML prolog or BOM), HEIF/AVIF and BMP with 415 in the API and in the worker', async () => {
    const avif = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .avif()
      .toBuffer()
      .catch(() => null);
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]);
    const files = [svgBomb, Buffer.from(`\uFEFF<?xml version="1.0"?>\n${svgBomb}`), bmp, ...(avif ? [avif] : [])];
    for (const bytes of files) {
      expect(() => requireAllowedFormat(bytes)).toThrow(
        expect.objectContaining({ kind: 'UNSUPPORTED_IMAGE_FORMAT', httpStatus: 415, errorCode: 1007 }),
      );
      await expect(
        checkImageHeader(b64(bytes), {
          maxImageBytes: limits.maxImageBytes,
          maxImagePixels: limits.maxImagePixels,
        }),
      ).rejects.toMatchObject({ kind: 'UNSUPPORTED_IMAGE_FORMAT' });
      await expect(decodeImage(b64(bytes), limits)).rejects.toMatchObject({ kind: 'UNSUPPORTED_IMAGE_FORMAT' });
    }
    expect(requireAllowedFormat.bind(null, svgBomb)).toThrow(/svg is not accepted/);
  });

  it('answers unrecognised bytes as not an image (400), and a file that only starts like PNG as invalid', async () => {
    expect(() => requireAllowedFormat(Buffer.from('plain text'))).toThrow(
      expect.objectContaining({ kind: 'INVALID_IMAGE' }),
    );
    const fakePng = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), svgBomb]);
    await expect(checkImageHeader(b64(fakePng), { maxImageBytes: 1e7, maxImagePixels: 1e8 })).rejects.toMatchObject({
      kind: 'INVALID_IMAGE',
    });
  });

  it('reads the same width and height at the door as the worker decodes, EXIF rotation included', async () => {
    const door = { maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels };
    const base = sharp({
      create: { width: 37, height: 11, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } },
    });
    const files = [
      ...(await Promise.all(
        (['jpeg', 'png', 'webp', 'gif', 'tiff'] as const).map((f) => base.clone().toFormat(f).toBuffer()),
      )),
      // Orientation 6: stored 37×11, shown (and decoded) 11×37.
      await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer(),
      await base.clone().png({ palette: true }).toBuffer(),
      await sharp({ create: { width: 37, height: 11, channels: 3, background: '#808080' } })
        .png()
        .toColourspace('b-w')
        .toBuffer(),
    ];
    for (const bytes of files) {
      const decoded = await decodeImage(b64(bytes), limits);
      await expect(checkImageHeader(b64(bytes), door)).resolves.toEqual({
        width: decoded.width,
        height: decoded.height,
      });
    }
    expect((await decodeImage(b64(files[5]), limits)).width).toBe(11);
    // Over the pixel limit by the header alone, whatever the data.
    await expect(checkImageHeader(b64(files[1]), { ...door, maxImagePixels: 37 * 11 - 1 })).rejects.toMatchObject({
      kind: 'IMAGE_TOO_LARGE',
    });
  });
});
