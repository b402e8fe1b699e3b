import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImagePreprocessSchema } from '../../shared/manifest.js';
import { tensorToImagePoint } from '../../worker/tasks/geometry.js';
import { decodeImage, imageToTensor, planResize } from '../../worker/tasks/image-preprocess.js';
import { b64, solidImage } from '../helpers/images.js';

const limits = { maxImageBytes: 10_000_000, maxImagePixels: 10_000_000 };

describe('planResize', () => {
  it('shorter-side + center crop (ImageNet): 640×480 → 341×256 → crop 224 at (58,16)', () => {
    const p = planResize({ mode: 'shorter-side', size: 256, crop: { width: 224, height: 224 } }, 640, 480);
    expect(p).toMatchObject({
      resizeWidth: 341,
      resizeHeight: 256,
      tensorWidth: 224,
      tensorHeight: 224,
      cropLeft: 58,
      cropTop: 16,
    });
  });

  it('letterbox keeps the aspect ratio and centres the padding', () => {
    const p = planResize({ mode: 'letterbox', width: 640, height: 640, pad_value: 114, anchor: 'center' }, 1280, 720);
    expect(p).toMatchObject({ resizeWidth: 640, resizeHeight: 360, padLeft: 0, padTop: 140, padValue: 114 });
  });

  it('letterbox anchored top-left (YOLOX) pads only the right and bottom', () => {
    const spec = { mode: 'letterbox', width: 416, height: 416, pad_value: 114, anchor: 'top-left' } as const;
    expect(planResize(spec, 300, 451)).toMatchObject({ resizeWidth: 277, resizeHeight: 416, padLeft: 0, padTop: 0 });
    expect(planResize(spec, 451, 300)).toMatchObject({ resizeWidth: 416, resizeHeight: 277, padLeft: 0, padTop: 0 });
  });

  it('fixed-height (PP-OCR classifier): height 48, width by ratio, capped at max_width', () => {
    expect(planResize({ mode: 'fixed-height', height: 48, max_width: 192 }, 100, 50)).toMatchObject({
      resizeWidth: 96,
      resizeHeight: 48,
      tensorWidth: 192,
    });
    expect(planResize({ mode: 'fixed-height', height: 48, max_width: 192 }, 1000, 50)).toMatchObject({
      resizeWidth: 192,
    });
  });

  it('limit-side (DBNet): longest side ≤ max, multiples of 32, never upscaled', () => {
    expect(planResize({ mode: 'limit-side', max_side: 960, multiple_of: 32 }, 1920, 1080)).toMatchObject({
      resizeWidth: 960,
      resizeHeight: 544,
    });
    expect(planResize({ mode: 'limit-side', max_side: 960, multiple_of: 32 }, 300, 100)).toMatchObject({
      resizeWidth: 288,
      resizeHeight: 96,
    });
  });

  it('min-max (R-CNN): shorter side to min unless the longer passes max; padded to a multiple', () => {
    expect(planResize({ mode: 'min-max', min_size: 800, max_size: 1333, multiple_of: 32 }, 640, 480)).toMatchObject({
      resizeWidth: 1067,
      resizeHeight: 800,
      tensorWidth: 1088,
      tensorHeight: 800,
    });
    expect(planResize({ mode: 'min-max', min_size: 800, max_size: 1333, multiple_of: 1 }, 2000, 500)).toMatchObject({
      resizeWidth: 1333,
      resizeHeight: 333,
    });
  });
});

describe('imageToTensor', () => {
  it("normalizes each channel as (x·scale − mean) / std, in the manifest's channel order", async () => {
    const img = await decodeImage(b64(await solidImage(40, 30, [200, 100, 50])), limits);
    const pre = ImagePreprocessSchema.parse({
      resize: { mode: 'stretch', width: 8, height: 4 },
      channel_order: 'BGR',
      mean: [0.5, 0.25, 0.125],
      std: [0.5, 0.5, 0.25],
    });
    const t = await imageToTensor(img, pre);
    expect(t.dims).toEqual([3, 4, 8]);
    const expected = [(50 / 255 - 0.5) / 0.5, (100 / 255 - 0.25) / 0.5, (200 / 255 - 0.125) / 0.25];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 32; i++) expect(t.data[c * 32 + i]).toBeCloseTo(expected[c], 5);
    }
  });

  it('pads fixed-height images with zeros after normalization, as PaddleOCR does', async () => {
    const img = await decodeImage(b64(await solidImage(20, 10, [255, 255, 255])), limits);
    const pre = ImagePreprocessSchema.parse({
      resize: { mode: 'fixed-height', height: 4, max_width: 16 },
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    });
    const t = await imageToTensor(img, pre);
    expect(t.dims).toEqual([3, 4, 16]);
    expect(t.data[0]).toBeCloseTo(1, 5); // white → 1
    expect(t.data[7]).toBeCloseTo(1, 5); // last image column (width 8)
    expect(t.data[8]).toBe(0); // padding
    expect(t.geometry.contentWidth).toBe(8);
  });

  it('maps tensor points back to image pixels through crop and letterbox', async () => {
    const img = await decodeImage(b64(await solidImage(200, 100, [0, 0, 0])), limits);
    const t = await imageToTensor(
      img,
      ImagePreprocessSchema.parse({ resize: { mode: 'letterbox', width: 100, height: 100 } }),
    );
    expect(tensorToImagePoint(t.geometry, 0, 25)).toEqual([0, 0]);
    expect(tensorToImagePoint(t.geometry, 100, 75)).toEqual([200, 100]);
    expect(tensorToImagePoint(t.geometry, 50, 50)).toEqual([100, 50]);
  });
});

describe('decodeImage', () => {
  it('honours EXIF orientation (a 6 = rotate 90° JPEG comes out portrait)', async () => {
    const jpeg = await sharp({ create: { width: 60, height: 20, channels: 3, background: '#808080' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const img = await decodeImage(b64(jpeg), limits);
    expect([img.width, img.height]).toEqual([20, 60]);
  });

  it('turns grayscale, alpha and 16-bit images into 8-bit RGB', async () => {
    const gray16 = await sharp(Buffer.from(new Uint16Array(4 * 4).fill(65535).buffer), {
      raw: { width: 4, height: 4, channels: 1, premultiplied: false },
    })
      .toColourspace('grey16')
      .png()
      .toBuffer();
    const g = await decodeImage(b64(gray16), limits);
    expect(g.rgb.length).toBe(4 * 4 * 3);
    const transparent = await sharp({
      create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const t = await decodeImage(b64(transparent), limits);
    expect([...t.rgb.subarray(0, 3)]).toEqual([255, 255, 255]); // flattened on white
  });

  it("gives small images with alpha exactly the pixels libvips' own flatten on white gives", async () => {
    // Every alpha and value combination across the image, in the formats that carry alpha.
    const W = 256;
    const raw = Buffer.alloc(W * W * 4);
    for (let y = 0; y < W; y++)
      for (let x = 0; x < W; x++) raw.set([x, (x * 7 + y) & 255, 255 - x, y], (y * W + x) * 4);
    const rgba = sharp(raw, { raw: { width: W, height: W, channels: 4 } });
    const files = [
      await rgba.clone().png().toBuffer(),
      await rgba.clone().webp({ lossless: true }).toBuffer(),
      await rgba.clone().tiff().toBuffer(),
      await rgba.clone().png({ palette: true }).toBuffer(),
      // Grey + alpha.
      await rgba.clone().toColourspace('b-w').png().toBuffer(),
    ];
    for (const bytes of files) {
      const fused = await sharp(bytes)
        .rotate()
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .raw()
        .toBuffer();
      const decoded = await decodeImage(b64(bytes), limits);
      expect(decoded).toMatchObject({ width: W, height: W });
      expect(Buffer.compare(decoded.rgb, fused)).toBe(0);
    }
  });

  it('refuses non-images with INVALID_IMAGE and huge images with IMAGE_TOO_LARGE', async () => {
    await expect(decodeImage(Buffer.from('not an image at all').toString('base64'), limits)).rejects.toMatchObject({
      kind: 'INVALID_IMAGE',
    });
    const big = await solidImage(200, 200, [1, 2, 3]);
    await expect(decodeImage(b64(big), { ...limits, maxImagePixels: 1000 })).rejects.toMatchObject({
      kind: 'IMAGE_TOO_LARGE',
      httpStatus: 413,
    });
    await expect(decodeImage(b64(big), { ...limits, maxImageBytes: 10 })).rejects.toMatchObject({
      kind: 'IMAGE_TOO_LARGE',
    });
  });
});
