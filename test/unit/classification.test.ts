import fs from 'node:fs';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { classProbKeys, softmax } from '../../worker/tasks/image-classification.js';
import { classifierReferenceLogits } from '../../models/tools/classification-test-model.js';
import { b64, solidImage, textLineImage } from '../helpers/images.js';

const config = loadConfig({});
const repo = loadModelRepository(config);

describe('classification postprocessing', () => {
  it('softmax is stable for large logits and sums to 1', () => {
    const p = softmax([1000, 1001, 1002]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[2]).toBeCloseTo(Math.exp(2) / (1 + Math.exp(1) + Math.exp(2)), 12);
  });

  it("keys class_probs by class name, disambiguating ImageNet's repeated names by id", () => {
    const keys = classProbKeys(repo.get('resnet50')!, 1000);
    expect(new Set(keys).size).toBe(1000);
    expect(keys).toContain('crane [134]');
    expect(keys).toContain('crane [517]');
    expect(keys[0]).toBe('tench, Tinca tinca');
  });
});

describe('resnet50 (ONNX-zoo signature, generated test model)', () => {
  it('answers the reference forward pass for uniform images, through resize, crop and normalization', async () => {
    const runner = await ModelRunner.load(
      repo.get('resnet50')!,
      { kind: 'cpu' },
      taskOptions(config),
      createWorkerMetrics(new Registry()),
    );
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    for (const rgb of [
      [250, 20, 20],
      [10, 200, 90],
      [30, 60, 240],
    ] as [number, number, number][]) {
      const { output } = await runner.run({ image: b64(await solidImage(300, 200, rgb)) });
      const m = rgb.map((v, c) => (v / 255 - mean[c]) / std[c]) as [number, number, number];
      const probs = softmax(classifierReferenceLogits(m));
      const best = probs.indexOf(Math.max(...probs));
      const labels = repo.get('resnet50')!.labels as string[];
      expect(output.class).toBe(best);
      expect(output.class_name).toBe(labels[best]);
      const classProbs = output.class_probs as Record<string, number>;
      expect(Object.keys(classProbs)).toHaveLength(1000);
      // Tolerance: onnxruntime averages 12,544 pixels in float32 (relative error up to ~1e-3).
      expect(classProbs[labels[best]]).toBeCloseTo(probs[best], 3);
      expect(classProbs['tench, Tinca tinca']).toBeCloseTo(probs[0], 3);
    }
    await runner.close();
  });
});

describe('text-direction (real PP-OCR direction classifier)', () => {
  it('says 0 for upright text and 180 for the same text rotated, in one batch', async () => {
    const metrics = createWorkerMetrics(new Registry());
    const runner = await ModelRunner.load(repo.get('text-direction')!, { kind: 'cpu' }, taskOptions(config), metrics);
    const upright = await textLineImage('Queues feed the batcher');
    const rotated = await sharp(upright).rotate(180).png().toBuffer();
    const example = fs.readFileSync('models/text-direction/example.png');
    const [a, b, c] = await Promise.all([upright, rotated, example].map((img) => runner.run({ image: b64(img) })));
    expect(a.output.class_name).toBe('0');
    expect(b.output.class_name).toBe('180');
    expect(c.output.class_name).toBe('180'); // the example is stored upside down
    expect((b.output.class_probs as Record<string, number>)['180']).toBeGreaterThan(0.9);
    await runner.close();
  });
});
