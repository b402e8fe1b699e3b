/** Shape buckets (batching.pad_to_bucket): bucket sizes, the waste cap, the padded tensor, cropping back, manifest checks. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { ImagePreprocessSchema, ManifestError, PadToBucketSchema, loadModel } from '../../shared/manifest.js';
import { bucketShape, bucketSide, bucketWaste } from '../../worker/tasks/buckets.js';
import { contentOfMap, tensorToImage } from '../../worker/tasks/geometry.js';
import { decodeImage, imageToTensor, padPlanToBucket, planResize } from '../../worker/tasks/image-preprocess.js';
import { b64, solidImage } from '../helpers/images.js';

const bucket = (b: unknown) => PadToBucketSchema.parse(b);

describe('bucketShape', () => {
  it('rounds each side up to the next multiple', () => {
    const spec = bucket({ multiple: 64, max_waste: 0.25 });
    expect(bucketShape({ width: 320, height: 160 }, spec)).toEqual({ width: 320, height: 192 });
    expect(bucketShape({ width: 288, height: 192 }, spec)).toEqual({ width: 320, height: 192 });
    expect(bucketShape({ width: 320, height: 192 }, spec)).toEqual({ width: 320, height: 192 });
    expect(bucketShape({ width: 352, height: 192 }, spec)).toEqual({ width: 384, height: 192 });
  });

  it('rounds up to the smallest listed size that holds the side; past the largest a side stays as it is', () => {
    const spec = bucket({ sizes: [128, 256, 512], max_waste: 0.9 });
    expect(bucketSide(100, spec)).toBe(128);
    expect(bucketSide(256, spec)).toBe(256);
    expect(bucketSide(257, spec)).toBe(512);
    expect(bucketSide(600, spec)).toBe(600);
    expect(bucketShape({ width: 600, height: 200 }, spec)).toEqual({ width: 600, height: 256 });
  });

  it("keeps the image's own shape when padding would pass max_waste (an exact quarter is allowed at 0.25)", () => {
    expect(bucketWaste({ width: 288, height: 160 }, { width: 320, height: 192 })).toBeCloseTo(0.25, 12);
    expect(bucketShape({ width: 288, height: 160 }, bucket({ multiple: 64, max_waste: 0.25 }))).toEqual({
      width: 320,
      height: 192,
    });
    expect(bucketShape({ width: 288, height: 160 }, bucket({ multiple: 64, max_waste: 0.2 }))).toEqual({
      width: 288,
      height: 160,
    });
    expect(bucketShape({ width: 32, height: 32 }, bucket({ multiple: 64 }))).toEqual({ width: 32, height: 32 }); // 75 % padding
  });

  it('has documented defaults and refuses a setting that says neither or both ways', () => {
    expect(bucket({ multiple: 32 })).toEqual({ multiple: 32, max_waste: 0.25, pad_value: 'zero-after-normalize' });
    expect(PadToBucketSchema.safeParse({ max_waste: 0.2 }).success).toBe(false);
    expect(PadToBucketSchema.safeParse({ multiple: 32, sizes: [64] }).success).toBe(false);
    expect(PadToBucketSchema.safeParse({ sizes: [256, 128] }).success).toBe(false);
    expect(PadToBucketSchema.safeParse({ multiple: 32, max_waste: 1 }).success).toBe(false);
  });
});

describe('padding to a bucket', () => {
  const limits = { maxImageBytes: 10_000_000, maxImagePixels: 10_000_000 };
  const pre = ImagePreprocessSchema.parse({
    resize: { mode: 'limit-side', max_side: 960, multiple_of: 32 },
    mean: [0.5, 0.4, 0.3],
    std: [0.2, 0.25, 0.5],
  });

  it('pads right and bottom: the image part of the tensor and the geometry are the unpadded ones', async () => {
    const img = await decodeImage(b64(await solidImage(300, 180, [250, 120, 10])), limits);
    const plain = await imageToTensor(img, pre);
    const padded = await imageToTensor(img, pre, { bucket: bucket({ multiple: 64 }) });
    expect(plain.dims).toEqual([3, 192, 288]);
    expect(padded.dims).toEqual([3, 192, 320]);
    const { tensorWidth, tensorHeight, ...mapping } = padded.geometry;
    expect({ tensorWidth, tensorHeight }).toEqual({ tensorWidth: 320, tensorHeight: 192 });
    const { tensorWidth: _w, tensorHeight: _h, ...plainMapping } = plain.geometry;
    expect(mapping).toEqual(plainMapping);
    expect(mapping).toMatchObject({ padLeft: 0, padTop: 0, contentWidth: 288, contentHeight: 192 });
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 192; y += 37) {
        for (let x = 0; x < 288; x += 41)
          expect(padded.data[c * 320 * 192 + y * 320 + x]).toBe(plain.data[c * 288 * 192 + y * 288 + x]);
        // Past the image: 0 in the model's input space (the default pad_value).
        for (let x = 288; x < 320; x += 7) expect(padded.data[c * 320 * 192 + y * 320 + x]).toBe(0);
      }
    }
  });

  it('a raw pad_value is normalized like the image', async () => {
    const img = await decodeImage(b64(await solidImage(320, 160, [0, 0, 0])), limits);
    const t = await imageToTensor(img, pre, { bucket: bucket({ multiple: 64, pad_value: 255 }) });
    expect(t.dims).toEqual([3, 192, 320]);
    const plane = 320 * 192;
    const last = 191 * 320;
    expect(t.data[last]).toBeCloseTo((1 - 0.5) / 0.2, 5);
    expect(t.data[plane + last]).toBeCloseTo((1 - 0.4) / 0.25, 5);
    expect(t.data[2 * plane + last]).toBeCloseTo((1 - 0.3) / 0.5, 5);
    expect(t.data[0]).toBeCloseTo(-0.5 / 0.2, 5);
  });

  it('leaves a plan alone when the image fills its bucket or padding would pass the cap', () => {
    const plan = planResize({ mode: 'limit-side', max_side: 960, multiple_of: 32 }, 640, 384);
    expect(padPlanToBucket(plan, bucket({ multiple: 64 }))).toBe(plan);
    expect(padPlanToBucket(plan, bucket({ multiple: 512, max_waste: 0.1 }))).toBe(plan);
  });
});

describe('contentOfMap', () => {
  it('crops a padded map to the image and keeps map cells at the same image points', () => {
    // A 6×4 tensor whose image is the left 4×3 (a 2-to-1 downscale of an 8×6 image); map at half resolution.
    const g = {
      imageWidth: 8,
      imageHeight: 6,
      tensorWidth: 6,
      tensorHeight: 4,
      scaleX: 0.5,
      scaleY: 0.5,
      padLeft: 0,
      padTop: 0,
      cropLeft: 0,
      cropTop: 0,
      contentWidth: 4,
      contentHeight: 3,
    };
    const map = Float32Array.from({ length: 3 * 2 }, (_, i) => i);
    const part = contentOfMap(g, map, 3, 2);
    expect([part.width, part.height]).toEqual([2, 2]);
    expect(Array.from(part.map)).toEqual([0, 1, 3, 4]);
    // Cell (1, 1)'s far corner is tensor (4, 4) in both frames: image (8, 8).
    expect(
      tensorToImage(
        part.geometry,
        (2 * part.geometry.tensorWidth) / part.width,
        (2 * part.geometry.tensorHeight) / part.height,
      ),
    ).toEqual(tensorToImage(g, 4, 4));
  });

  it('returns the map itself when nothing is padding', () => {
    const g = {
      imageWidth: 4,
      imageHeight: 4,
      tensorWidth: 4,
      tensorHeight: 4,
      scaleX: 1,
      scaleY: 1,
      padLeft: 0,
      padTop: 0,
      cropLeft: 0,
      cropTop: 0,
      contentWidth: 4,
      contentHeight: 4,
    };
    const map = new Float32Array(16);
    expect(contentOfMap(g, map, 4, 4)).toEqual({ map, width: 4, height: 4, geometry: g });
  });
});

describe('manifest checks', () => {
  const config = loadConfig({});
  const tmp: string[] = [];
  afterEach(() => tmp.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const load = (preprocess: unknown, padToBucket: unknown, task = 'object-detection') => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-bucket-'));
    tmp.push(dir);
    const manifest = {
      name: 'm',
      task,
      model: { file: 'absent.onnx' },
      inputs: { image: 'x' },
      outputs: task === 'object-detection' ? { probability_map: 'y' } : { scores: 'y' },
      preprocess,
      batching: { max_batch_size: 4, pad_to_bucket: padToBucket },
    };
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    return () => loadModel(dir, config);
  };
  const limitSide = { resize: { mode: 'limit-side', max_side: 960, multiple_of: 32 } };

  it('takes a bucket for a model whose tensor follows the image', () => {
    expect(load(limitSide, { multiple: 64 })().manifest.batching.pad_to_bucket).toEqual({
      multiple: 64,
      max_waste: 0.25,
      pad_value: 'zero-after-normalize',
    });
    expect(load(limitSide, undefined)().manifest.batching.pad_to_bucket).toBeUndefined();
  });

  it('refuses buckets where they cannot apply, saying why', () => {
    expect(load(limitSide, { multiple: 48 })).toThrow(/48 is not a multiple of the resize's multiple_of \(32\)/);
    expect(load(limitSide, { sizes: [64, 100] })).toThrow(/100 is not a multiple/);
    expect(
      load({ resize: { mode: 'stretch', width: 224, height: 224 } }, { multiple: 32 }, 'image-classification'),
    ).toThrow(/resize mode "stretch" gives every image one tensor shape already/);
    expect(load({ ...limitSide, layout: 'CHW' }, { multiple: 64 })).toThrow(/one image per run/);
    expect(load(limitSide, { multiple: 64 })).not.toThrow(ManifestError);
  });
});
