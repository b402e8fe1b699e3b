/**
 * The reference architectures (Faster R-CNN, Mask R-CNN, DeepLabV3, YOLOv8) end to end through
 * ModelRunner on their generated stand-ins, whose outputs are known: checks the mapping back
 * to input pixels, options, encodings and batching of mixed sizes.
 */
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateInput } from '../../api/input-validation.js';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { ImagePreprocessSchema, loadModel, type ModelEntry } from '../../shared/manifest.js';
import { DEEPLAB_TEST, VOC, deeplabReferenceLogits } from '../../models/tools/deeplab-test-model.js';
import { RCNN_TEST_DETECTIONS } from '../../models/tools/rcnn-test-model.js';
import { YOLO_TEST_PREDICTIONS } from '../../models/tools/yolo-test-model.js';
import { planResize } from '../../worker/tasks/image-preprocess.js';
import { decodePng, decodeRle, type PngImage, type Rle } from '../../worker/tasks/postprocess/mask-encoding.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { TASK_PIPELINES } from '../../worker/tasks/index.js';

// The generated stand-ins, whose outputs are known, even where real weights are found (MODELHUB_WEIGHTS_DIR).
const config = loadConfig({ ...process.env, MODELHUB_TEST_MODELS: 'always' });
const runners = new Map<string, ModelRunner>();

async function runner(name: string, batching?: ModelEntry['manifest']['batching']): Promise<ModelRunner> {
  const key = batching ? `${name}:${JSON.stringify(batching)}` : name;
  if (!runners.has(key)) {
    const loaded = loadModel(`models/${name}`, config);
    const entry = batching ? { ...loaded, manifest: { ...loaded.manifest, batching } } : loaded;
    expect(entry.weights).toBe('test');
    runners.set(
      key,
      await ModelRunner.load(entry, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(new Registry())),
    );
  }
  return runners.get(key)!;
}

afterAll(async () => {
  for (const r of runners.values()) await r.close();
});

async function solid(width: number, height: number, color = '#808080'): Promise<string> {
  return (
    await sharp({ create: { width, height, channels: 3, background: color } })
      .png()
      .toBuffer()
  ).toString('base64');
}

/** Where the stand-in R-CNN's fraction boxes land in an image of width × height ([x1, y1, x2, y2], unclamped). */
function rcnnExpected(model: string, width: number, height: number): Array<[number, number, number, number]> {
  const pre = ImagePreprocessSchema.parse(loadModel(`models/${model}`, config).manifest.preprocess);
  const plan = planResize(pre.resize, width, height);
  const sx = plan.resizeWidth / width;
  const sy = plan.resizeHeight / height;
  return RCNN_TEST_DETECTIONS.map((d) => [
    (d.fractions[0] * plan.tensorWidth) / sx,
    (d.fractions[1] * plan.tensorHeight) / sy,
    (d.fractions[2] * plan.tensorWidth) / sx,
    (d.fractions[3] * plan.tensorHeight) / sy,
  ]);
}

const clampTo = (w: number, h: number) => (b: number[]) => [
  Math.min(Math.max(b[0], 0), w),
  Math.min(Math.max(b[1], 0), h),
  Math.min(Math.max(b[2], 0), w),
  Math.min(Math.max(b[3], 0), h),
];

describe('faster-rcnn (zoo signature)', () => {
  it('answers boxes as [y1, x1, y2, x2] in input pixels, COCO names, default score threshold 0.5', async () => {
    const r = await runner('faster-rcnn');
    const { output } = await r.run({ image: await solid(300, 200) });
    const expected = rcnnExpected('faster-rcnn', 300, 200).slice(0, 3).map(clampTo(300, 200));
    expect(output.detection_scores).toEqual([0.98, 0.85, 0.7].map((s) => expect.closeTo(s, 6)));
    expect(output.detection_classes).toEqual([1, 3, 18]);
    // Zoo labels index ['__background', ...COCO-80]: 18 is horse.
    expect(output.detection_class_names).toEqual(['person', 'car', 'horse']);
    (output.detection_boxes as number[][]).forEach((b, i) => {
      const [x1, y1, x2, y2] = expected[i];
      expect(b).toEqual([y1, x1, y2, x2].map((v) => expect.closeTo(v, 3)));
    });
  });

  it('honours score_threshold and max_detections', async () => {
    const r = await runner('faster-rcnn');
    const low = await r.run({ image: await solid(300, 200), score_threshold: 0.1 });
    expect(low.output.detection_classes).toEqual([1, 3, 18, 80]);
    expect(low.output.detection_class_names).toContain('toothbrush');
    const capped = await r.run({ image: await solid(300, 200), score_threshold: 0.1, max_detections: 2 });
    expect(capped.output.detection_classes).toEqual([1, 3]);
  });

  it('runs images of different sizes one per session.run (unbatched export)', async () => {
    const r = await runner('faster-rcnn');
    const sizes: Array<[number, number]> = [
      [300, 200],
      [200, 300],
      [640, 120],
    ];
    const results = await Promise.all(sizes.map(async ([w, h]) => await r.run({ image: await solid(w, h) })));
    results.forEach((res, i) => {
      const [w, h] = sizes[i];
      expect(res.batchSize).toBe(1);
      const [x1, y1, x2, y2] = clampTo(w, h)(rcnnExpected('faster-rcnn', w, h)[0]);
      expect(res.output.detection_boxes as number[][]).toContainEqual(
        [y1, x1, y2, x2].map((v) => expect.closeTo(v, 3)),
      );
    });
  });
});

describe('mask-rcnn (zoo signature)', () => {
  const W = 300;
  const H = 200;

  async function masks(
    encoding: 'array' | 'rle' | 'png',
  ): Promise<{ output: Record<string, unknown>; masks: Uint8Array[] }> {
    const r = await runner('mask-rcnn');
    const { output } = await r.run({ image: await solid(W, H), mask_encoding: encoding });
    const raw = output.detection_masks as unknown[];
    const decoded = await Promise.all(
      raw.map(async (m) => {
        if (encoding === 'array') return Uint8Array.from((m as boolean[][]).flat(), (v) => (v ? 1 : 0));
        if (encoding === 'rle') return decodeRle(m as Rle);
        return Uint8Array.from(await decodePng(m as PngImage), (v) => (v ? 1 : 0));
      }),
    );
    return { output, masks: decoded };
  }

  it('pastes each mask into its box at input resolution, cut at the borders', async () => {
    const { output, masks: ms } = await masks('array');
    const expected = rcnnExpected('mask-rcnn', W, H);
    expect(output.detection_classes).toEqual([1, 3, 18]);
    expect(ms).toHaveLength(3);
    const inside = (m: Uint8Array, pred: (x: number, y: number) => boolean) => {
      let ok = 0,
        bad = 0;
      m.forEach((v, i) => {
        if (!v) return;
        if (pred(i % W, Math.floor(i / W))) ok++;
        else bad++;
      });
      return { ok, bad };
    };
    // 0: full mask → every pixel whose center is in the box.
    const [a, b, c] = expected;
    const inBox = (box: number[]) => (x: number, y: number) =>
      x + 0.5 >= box[0] && x + 0.5 < box[2] && y + 0.5 >= box[1] && y + 0.5 < box[3];
    const full = inside(ms[0], inBox(a));
    expect(full.bad).toBe(0);
    expect(full.ok).toBeGreaterThan(0.95 * (a[2] - a[0]) * (a[3] - a[1]));
    // 1: left half of its box only.
    const left = inside(ms[1], (x, y) => inBox(b)(x, y) && x + 0.5 <= (b[0] + b[2]) / 2 + 1);
    expect(left.bad).toBe(0);
    expect(left.ok).toBeGreaterThan(0.4 * (b[2] - b[0]) * (b[3] - b[1]));
    // 2: runs past the right/bottom edges; top half of the (unclamped) box, cut at the image.
    const top = inside(ms[2], (x, y) => inBox(c)(x, y) && y + 0.5 <= (c[1] + c[3]) / 2 + 1);
    expect(top.bad).toBe(0);
    const visibleTop = (W - Math.ceil(c[0])) * (Math.min(H, (c[1] + c[3]) / 2) - c[1]);
    expect(top.ok).toBeGreaterThan(0.9 * visibleTop);
  });

  it('gives the same masks as COCO RLE and as PNG', async () => {
    const plain = await masks('array');
    const rle = await masks('rle');
    const png = await masks('png');
    expect((rle.output.detection_masks as Rle[])[0].size).toEqual([H, W]);
    plain.masks.forEach((m, i) => {
      expect(Array.from(rle.masks[i])).toEqual(Array.from(m));
      expect(Array.from(png.masks[i])).toEqual(Array.from(m));
    });
  });
});

describe('deeplabv3 (torchvision signature)', () => {
  const norm = (rgb: number[]) =>
    rgb.map((v, c) => (v / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c]) as [number, number, number];
  const softmaxTop = (logits: number[]) => {
    const max = Math.max(...logits);
    return { cls: logits.indexOf(max), p: 1 / logits.reduce((s, l) => s + Math.exp(l - max), 0) };
  };

  async function scene(): Promise<string> {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="90" height="60"><rect width="100%" height="100%" fill="#ffffff"/><rect x="10" y="10" width="30" height="40" fill="#ff0000"/><rect x="55" y="20" width="25" height="30" fill="#00ff00"/></svg>`;
    return (await sharp(Buffer.from(svg)).png().toBuffer()).toString('base64');
  }

  it('answers preds and probs at the input size, softmax over the resampled logits', async () => {
    const r = await runner('deeplabv3');
    const { output } = await r.run({ image: await scene() });
    const preds = output.preds as number[][];
    const probs = output.probs as number[][];
    expect(preds).toHaveLength(60);
    expect(preds[0]).toHaveLength(90);
    const red = softmaxTop(deeplabReferenceLogits(norm([255, 0, 0])));
    const green = softmaxTop(deeplabReferenceLogits(norm([0, 255, 0])));
    const white = softmaxTop(deeplabReferenceLogits(norm([255, 255, 255])));
    expect([red.cls, green.cls, white.cls]).toEqual([VOC.person, VOC.car, VOC.background]);
    // Away from the edges (resampling blends a pixel or so), each region is its class.
    expect(preds[30][25]).toBe(VOC.person);
    expect(probs[30][25]).toBeCloseTo(red.p, 3);
    expect(preds[35][67]).toBe(VOC.car);
    expect(probs[35][67]).toBeCloseTo(green.p, 3);
    expect(preds[5][5]).toBe(VOC.background);
    expect(probs[5][5]).toBeCloseTo(white.p, 3);
    // The person region's extent matches the drawn rectangle within a pixel.
    const personCols = preds[30].flatMap((c, x) => (c === VOC.person ? [x] : []));
    expect(Math.min(...personCols)).toBeGreaterThanOrEqual(9);
    expect(Math.min(...personCols)).toBeLessThanOrEqual(11);
    expect(Math.max(...personCols)).toBeGreaterThanOrEqual(38);
    expect(Math.max(...personCols)).toBeLessThanOrEqual(40);
  });

  it('offers per-class probabilities and compact encodings', async () => {
    const r = await runner('deeplabv3');
    const image = await scene();
    const plain = (await r.run({ image })).output;
    const perClass = (await r.run({ image, per_class_probs: true })).output.probs as number[][][];
    expect(perClass).toHaveLength(DEEPLAB_TEST.classes);
    expect(perClass.reduce((s, plane) => s + plane[30][25], 0)).toBeCloseTo(1, 5);
    expect(perClass[VOC.person][30][25]).toBeCloseTo((plain.probs as number[][])[30][25], 5);

    const png = (await r.run({ image, encoding: 'png' })).output;
    const classMap = await decodePng(png.preds as PngImage);
    expect(Array.from(classMap)).toEqual((plain.preds as number[][]).flat());

    const rle = (await r.run({ image, encoding: 'rle' })).output.preds as Array<Rle & { class: number }>;
    expect(rle.map((p) => p.class)).toEqual([VOC.background, VOC.car, VOC.person]);
    const person = decodeRle(rle.find((p) => p.class === VOC.person)!);
    expect(Array.from(person)).toEqual((plain.preds as number[][]).flat().map((c) => (c === VOC.person ? 1 : 0)));
  });

  it('batches same-sized images together and keeps differently sized ones apart', async () => {
    const r = await runner('deeplabv3', { max_batch_size: 8, max_queue_delay_ms: 300, min_batch_size: 2 });
    const a = await solid(60, 40, '#ff0000');
    const b = await solid(40, 60, '#00ff00');
    const same = await Promise.all([r.run({ image: a }), r.run({ image: a })]);
    expect(same.map((x) => x.batchSize)).toEqual([2, 2]);
    // A different shape closes the pending batch: one session.run each, never padded together.
    const mixed = await Promise.all([r.run({ image: a }), r.run({ image: b })]);
    expect(mixed.map((x) => x.batchSize)).toEqual([1, 1]);
    const results = [...same, mixed[1]];
    expect((results[0].output.preds as number[][])[20][30]).toBe(VOC.person);
    expect(results[2].output.preds as number[][]).toHaveLength(60);
    expect((results[2].output.preds as number[][])[30][20]).toBe(VOC.car);
  });
});

describe('yolov8 (Ultralytics signature)', () => {
  it('undoes the letterbox and applies class-wise NMS', async () => {
    const r = await runner('yolov8');
    // 800×400 → letterboxed to 640×320, 160 px of padding above.
    const { output } = await r.run({ image: await solid(800, 400) });
    const s = 0.8;
    const box = (p: (typeof YOLO_TEST_PREDICTIONS)[number]) =>
      clampTo(
        800,
        400,
      )([(p.cx - p.w / 2) / s, (p.cy - p.h / 2 - 160) / s, (p.cx + p.w / 2) / s, (p.cy + p.h / 2 - 160) / s]);
    const kept = [0, 2, 3].map((i) => YOLO_TEST_PREDICTIONS[i]);
    expect(output.detection_classes).toEqual(kept.map((p) => p.classId));
    expect(output.detection_class_names).toEqual(['person', 'car', 'dog']);
    (output.detection_boxes as number[][]).forEach((b, i) => {
      const [x1, y1, x2, y2] = box(kept[i]);
      expect(b).toEqual([y1, x1, y2, x2].map((v) => expect.closeTo(v, 3)));
    });
  });

  it('batches images of any size into one run (fixed 640×640 input)', async () => {
    // Waits for two jobs (generous delay) so both (differently long) preprocessings meet in one batch.
    const r = await runner('yolov8', { max_batch_size: 8, max_queue_delay_ms: 300, min_batch_size: 2 });
    const results = await Promise.all([
      r.run({ image: await solid(800, 400) }),
      r.run({ image: await solid(300, 500) }),
    ]);
    expect(results.map((x) => x.batchSize)).toEqual([2, 2]);
    // 300×500 → scale 1.28, 128 px padding left and right.
    const [y1, x1] = (results[1].output.detection_boxes as number[][])[0];
    expect(x1).toBeCloseTo((320 - 50 - 128) / 1.28, 3);
    expect(y1).toBeCloseTo((200 - 40) / 1.28, 3);
  });
});

describe('options and manifests', () => {
  const entries = () =>
    Object.fromEntries(
      ['faster-rcnn', 'mask-rcnn', 'deeplabv3', 'yolov8'].map((n) => [n, loadModel(`models/${n}`, config)]),
    );

  it('validates the request options at the API', async () => {
    const { yolov8, deeplabv3 } = entries() as Record<string, ModelEntry>;
    const image = await solid(10, 10);
    const limits = { maxImageBytes: 1e6, maxImagePixels: 1e6, maxResultBytes: 32 * 1024 * 1024 };
    await expect(
      validateInput(yolov8, { image, score_threshold: 0.4, max_detections: 5 }, limits),
    ).resolves.toMatchObject({ score_threshold: 0.4 });
    await expect(validateInput(yolov8, { image, score_threshold: 1.5 }, limits)).rejects.toMatchObject({
      kind: 'INVALID_INPUT',
      message: expect.stringMatching(/score_threshold/),
    });
    await expect(validateInput(yolov8, { image, max_detections: 0 }, limits)).rejects.toMatchObject({
      message: expect.stringMatching(/max_detections/),
    });
    await expect(validateInput(yolov8, { image, mask_encoding: 'rle' }, limits)).rejects.toMatchObject({
      message: expect.stringMatching(/unknown field/),
    });
    await expect(validateInput(deeplabv3, { image, encoding: 'jpeg' }, limits)).rejects.toMatchObject({
      message: expect.stringMatching(/encoding/),
    });
    await expect(validateInput(deeplabv3, { image }, limits)).resolves.toMatchObject({
      encoding: 'array',
      per_class_probs: false,
    });
  });

  it('rejects a bad option in the worker too, without failing the model', async () => {
    const r = await runner('yolov8');
    await expect(r.run({ image: await solid(20, 20), max_detections: -1 })).rejects.toMatchObject({
      kind: 'INVALID_OPTION',
    });
    // The same runner then serves a good request: one score, class and box per detection.
    const { output } = await r.run({ image: await solid(20, 20) });
    const n = (output.detection_scores as number[]).length;
    expect(output.detection_classes).toHaveLength(n);
    expect(output.detection_boxes).toHaveLength(n);
    expect(output.detection_class_names).toHaveLength(n);
  });

  it('explains a manifest whose decoder does not fit the task or misses an output', () => {
    const base = loadModel('models/yolov8', config);
    const session = { inputNames: ['images'], outputNames: ['output0'] };
    const ctx = (manifest: Partial<ModelEntry['manifest']>) => ({
      entry: { ...base, manifest: { ...base.manifest, ...manifest } },
      session,
      options: taskOptions(config),
    });
    expect(() => TASK_PIPELINES['instance-segmentation']!(ctx({ task: 'instance-segmentation' }))).toThrow(
      /yolo decoder has no masks/,
    );
    expect(() => TASK_PIPELINES['object-detection']!(ctx({ outputs: {} }))).toThrow(/outputs\.predictions/);
    expect(() => TASK_PIPELINES['object-detection']!(ctx({ postprocess: { decoder: 'ssd' } }))).toThrow(
      /decoder: dbnet \| rcnn \| yolo/,
    );
    expect(() =>
      TASK_PIPELINES['object-detection']!(
        ctx({ postprocess: { decoder: 'rcnn' }, outputs: { boxes: 'a', labels: 'b', scores: 'c' } }),
      ),
    ).toThrow(/layout to "CHW"/);
  });
});

beforeAll(() => {
  expect(config.MODELHUB_TEST_MODELS).toBe('always');
});
