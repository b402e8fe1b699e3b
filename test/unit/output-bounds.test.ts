/** Results that grow with the image are refused before they are built, at the API and in the worker. */
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { validateInput } from '../../api/input-validation.js';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModel } from '../../shared/manifest.js';
import { checkInstanceMasksOutput, checkSegmentationOutput } from '../../shared/output-bounds.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { ModelRunner } from '../../worker/model-runner.js';

const config = loadConfig({ ...process.env, MODELHUB_TEST_MODELS: 'auto' });
const MiB32 = 32 * 1024 * 1024;
const flatPng = async (w: number, h: number) =>
  (
    await sharp({ create: { width: w, height: h, channels: 3, background: '#808080' } })
      .png()
      .toBuffer()
  ).toString('base64');

describe('result size bounds', () => {
  it('refuses a 3000×3000 segmentation as arrays or with per-class probabilities, naming rle and png', () => {
    const err = (() => {
      try {
        checkSegmentationOutput(3000, 3000, 21, { encoding: 'array', per_class_probs: false }, MiB32);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ kind: 'OUTPUT_TOO_LARGE', errorCode: 1009, httpStatus: 422 });
    expect((err as Error).message).toMatch(/"rle" or "png"/);
    expect(() => checkSegmentationOutput(3000, 3000, 21, { encoding: 'png', per_class_probs: true }, MiB32)).toThrow(
      /per_class_probs/,
    );
    expect(() =>
      checkSegmentationOutput(3000, 3000, 21, { encoding: 'png', per_class_probs: false }, MiB32),
    ).not.toThrow();
    expect(() =>
      checkSegmentationOutput(3000, 3000, 21, { encoding: 'rle', per_class_probs: false }, MiB32),
    ).not.toThrow();
    expect(() =>
      checkSegmentationOutput(640, 480, 21, { encoding: 'array', per_class_probs: false }, MiB32),
    ).not.toThrow();
  });

  it('refuses instance masks as arrays when their count × pixels passes the limit', () => {
    expect(() => checkInstanceMasksOutput(3000, 3000, 1, 'array', MiB32)).toThrow(/mask_encoding "rle" or "png"/);
    expect(() => checkInstanceMasksOutput(3000, 3000, 100, 'rle', MiB32)).not.toThrow();
    expect(() => checkInstanceMasksOutput(640, 480, 5, 'array', MiB32)).not.toThrow();
  });

  it('the API refuses at the door (from the header size) before anything is queued', async () => {
    const deeplab = loadModel('models/deeplabv3', config);
    const image = await flatPng(3000, 3000);
    const limits = { maxImageBytes: 20e6, maxImagePixels: 40e6, maxResultBytes: MiB32 };
    await expect(validateInput(deeplab, { image }, limits)).rejects.toMatchObject({ kind: 'OUTPUT_TOO_LARGE' });
    await expect(validateInput(deeplab, { image, encoding: 'png' }, limits)).resolves.toMatchObject({
      encoding: 'png',
    });
  });

  const runners: ModelRunner[] = [];
  afterAll(async () => {
    for (const r of runners) await r.close();
  });

  it('the worker checks again before building the maps (a job that bypassed the API), as a final input error', async () => {
    const entry = loadModel('models/deeplabv3', config);
    const r = await ModelRunner.load(
      entry,
      { kind: 'cpu' },
      { ...taskOptions(config), maxResultBytes: 20_000 },
      createWorkerMetrics(new Registry()),
    );
    runners.push(r);
    const image = await flatPng(90, 60);
    await expect(r.run({ image })).rejects.toMatchObject({ kind: 'OUTPUT_TOO_LARGE' });
    await expect(r.run({ image, encoding: 'rle' })).resolves.toMatchObject({ output: { preds: expect.any(Array) } });
  });
});
