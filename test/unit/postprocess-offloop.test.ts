/**
 * Postprocessing of large outputs in the worker's threads (OFFLOOP_POSTPROCESS_PIXELS): the
 * answer is byte for byte the one the event loop would give, for every segmentation path
 * (torchvision logits, DBNet text regions and detections, R-CNN and DBNet instance masks) and encoding, on the
 * generated stand-in models; and while a large segmentation is postprocessed the event loop
 * keeps turning (counted in turns and by the order of answers, never by time).
 */
import * as ort from 'onnxruntime-node';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { ImagePreprocessSchema, loadModel } from '../../shared/manifest.js';
import { planResize } from '../../worker/tasks/image-preprocess.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { TASK_PIPELINES } from '../../worker/tasks/index.js';
import { renderWords, type Word } from '../helpers/text-image.js';
import { closePostprocessPool, offloopPostprocess, postprocessPool } from '../../worker/tasks/postprocess/offloop.js';

const base = { ...process.env, MODELHUB_TEST_MODELS: 'always' };
const WORDS: Word[] = [
  { text: 'ModelHub', x: 10, y: 40, size: 28 },
  { text: 'tenants', x: 30, y: 95, size: 22 },
];
const inlineConfig = loadConfig({ ...base, OFFLOOP_POSTPROCESS_PIXELS: '0' });
const offloopConfig = loadConfig({ ...base, OFFLOOP_POSTPROCESS_PIXELS: '1' });
const runners: ModelRunner[] = [];

async function runner(name: string, config: Config): Promise<ModelRunner> {
  const r = await ModelRunner.load(
    loadModel(`models/${name}`, config),
    { kind: 'cpu' },
    taskOptions(config),
    createWorkerMetrics(new Registry()),
  );
  runners.push(r);
  return r;
}

afterAll(async () => {
  for (const r of runners) await r.close();
  await closePostprocessPool();
});

async function scene(width: number, height: number): Promise<string> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#ffffff"/><rect x="${width / 9}" y="${height / 6}" width="${width / 3}" height="${height / 2}" fill="#ff0000"/><rect x="${width * 0.6}" y="${height / 3}" width="${width / 4}" height="${height / 2}" fill="#00ff00"/><rect x="${width * 0.1}" y="${height * 0.75}" width="${width * 0.8}" height="${height / 10}" fill="#000000"/></svg>`;
  return (await sharp(Buffer.from(svg)).png().toBuffer()).toString('base64');
}

describe('postprocessing in a thread gives the same bytes', () => {
  const cases: [string, Record<string, unknown>[]][] = [
    [
      'deeplabv3',
      [
        {},
        { encoding: 'rle' },
        { encoding: 'png' },
        { per_class_probs: true },
        { encoding: 'png', per_class_probs: true },
      ],
    ],
    ['text-segmentation', [{}, { encoding: 'rle' }, { encoding: 'png' }, { per_class_probs: true }]],
    ['mask-rcnn', [{}, { mask_encoding: 'rle' }, { mask_encoding: 'png' }]],
    ['text-instances', [{ mask_encoding: 'rle' }, { mask_encoding: 'png' }]],
    ['text-detection', [{}, { score_threshold: 0.3, max_detections: 1 }]],
  ];
  // DBNet's region search is a thread task of its own: text-instances uses two (regions, then masks).
  const threadTasks: Record<string, number> = { 'text-instances': 2 };
  it.each(cases)('%s', async (model, optionSets) => {
    const inline = await runner(model, inlineConfig);
    const offloop = await runner(model, offloopConfig);
    const image = model.startsWith('text-')
      ? (await renderWords(240, 120, WORDS)).png.toString('base64')
      : await scene(180, 120);
    for (const options of optionSets) {
      const before = postprocessPool(taskOptions(offloopConfig)).tasksRun;
      const a = (await inline.run({ image, ...options })).output;
      const between = postprocessPool(taskOptions(offloopConfig)).tasksRun;
      const b = (await offloop.run({ image, ...options })).output;
      expect(between, 'the inline runner used no thread').toBe(before);
      // Instance masks go to a thread when there are any (the stand-ins find some on these images).
      if ('detection_masks' in a) expect((a.detection_masks as unknown[]).length).toBeGreaterThan(0);
      expect(postprocessPool(taskOptions(offloopConfig)).tasksRun, 'the offloading runner used a thread').toBe(
        between + (threadTasks[model] ?? 1),
      );
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    }
  });
});

describe('the default threshold', () => {
  it("catches a 1280×960 page's DBNet map (960×736), not a text line's", () => {
    const config = loadConfig(base);
    const pre = ImagePreprocessSchema.parse(loadModel('models/text-detection', config).manifest.preprocess);
    const map = (w: number, h: number) => {
      const p = planResize(pre.resize, w, h);
      return p.tensorWidth * p.tensorHeight;
    };
    expect(map(1280, 960)).toBe(960 * 736);
    expect(offloopPostprocess(map(1280, 960), taskOptions(config))).toBe(true);
    expect(offloopPostprocess(map(320, 48), taskOptions(config))).toBe(false);
  });
});

describe('a large segmentation does not hold the event loop', () => {
  /** Event-loop turns while one 1200×1000 deeplabv3 answer is postprocessed, and the order of it and a small one started just after. */
  async function race(config: Config) {
    const entry = loadModel('models/deeplabv3', config);
    const pipeline = TASK_PIPELINES['semantic-segmentation']!({
      entry,
      session: { inputNames: ['input'], outputNames: ['out'] },
      options: taskOptions(config),
    });
    const logits = (n: number) => Float32Array.from({ length: 21 * n * n }, (_, i) => Math.sin(i * 0.37) * 4);
    const outputs = (n: number) => ({ out: new ort.Tensor('float32', logits(n), [1, 21, n, n]) });
    const big = await pipeline.preprocess({
      image: await scene(1200, 1000),
      encoding: 'array',
      per_class_probs: false,
    });
    const small = await pipeline.preprocess({ image: await scene(60, 40), encoding: 'array', per_class_probs: false });
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    spin();
    const order: string[] = [];
    const start = turns;
    let during = -1;
    const p = Promise.resolve(pipeline.postprocess(outputs(65), 0, big)).then((out) => {
      during = turns - start;
      order.push('big');
      return out;
    });
    const q = Promise.resolve(pipeline.postprocess(outputs(8), 0, small)).then(() => order.push('small'));
    const [out] = await Promise.all([p, q]);
    spinning = false;
    expect((out as { preds: number[][] }).preds).toHaveLength(1000);
    return { during, order };
  }

  it('on the event loop (the old way), nothing else runs meanwhile', async () => {
    expect(await race(inlineConfig)).toEqual({ during: 0, order: ['big', 'small'] });
  });

  it('in a thread, the loop keeps turning and a small answer started after it comes first', async () => {
    // The big one (1.2 M pixels) past the threshold, the small one (2400) under it.
    const { during, order } = await race(loadConfig({ ...base, OFFLOOP_POSTPROCESS_PIXELS: '100000' }));
    expect(during).toBeGreaterThan(0);
    expect(order).toEqual(['small', 'big']);
  });
});
