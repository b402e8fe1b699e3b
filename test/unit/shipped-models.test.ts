/**
 * The Apache-2.0 models the repository ships (MobileNetV2 int8, YOLOX-nano, DeepLabV3-MobileNetV2)
 * answer truthfully out of the box: loaded from models/ with no MODELHUB_WEIGHTS_DIR and no
 * download, each `verified` against the sha256 its manifest records, on real photos (the
 * scikit-image samples chelsea, CC0, and astronaut, public domain: the repository ships copies
 * as the models' examples; the full-size astronaut is read in place from ../shared/weights when present).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { sha256File } from '../../shared/file-hash.js';
import { loadModel, type ModelEntry } from '../../shared/manifest.js';
import { provenanceOf } from '../../shared/weights-provenance.js';
import { generateTestModels } from '../../models/tools/generate-test-models.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { checkSignature } from '../../worker/model-signature.js';
import { FIXTURE_WEIGHTS_DIR } from '../helpers/weights.js';

const config = loadConfig({ ...process.env, MODELHUB_TEST_MODELS: 'off', MODELHUB_WEIGHTS_DIR: '' });
const runners = new Map<string, ModelRunner>();
async function runner(name: string): Promise<ModelRunner> {
  if (!runners.has(name)) {
    const entry = loadModel(path.join(REPO_ROOT, 'models', name), config);
    runners.set(
      name,
      await ModelRunner.load(entry, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(new Registry())),
    );
  }
  return runners.get(name)!;
}
afterAll(async () => {
  for (const r of runners.values()) await r.close();
});

const image = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file)).toString('base64');
const CHELSEA = 'models/mobilenetv2/example.jpg'; // 451 × 300
const astronaut = () =>
  FIXTURE_WEIGHTS_DIR
    ? { b64: fs.readFileSync(path.join(FIXTURE_WEIGHTS_DIR, 'images', 'astronaut.png')).toString('base64'), size: 512 }
    : { b64: image('models/yolox-nano/example.jpg'), size: 320 };

const SHIPPED = {
  mobilenetv2: ['mobilenetv2-12-int8-resaved.onnx', '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f'],
  'yolox-nano': ['yolox-nano-416.onnx', '695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14'],
  'deeplabv3-mobilenetv2': [
    'deeplabv3-mobilenetv2-voc-257.onnx',
    '48a46b346ca7e2e96760b8a10a302046a3b5a9ce55e59d4c659c36d9cbd44118',
  ],
} as const;

describe('shipped real models', () => {
  it.each(Object.entries(SHIPPED))(
    '%s loads its shipped file, verified against the recorded sha256, with LICENSE and ORIGIN beside it',
    async (name, [file, sha256]) => {
      const r = await runner(name);
      expect(r.weights).toEqual({ file, sha256, kind: 'real', verification: 'verified' });
      for (const f of ['LICENSE', 'ORIGIN.md'])
        expect(fs.existsSync(path.join(REPO_ROOT, 'models', name, f))).toBe(true);
      expect(fs.readFileSync(path.join(REPO_ROOT, 'models', name, 'LICENSE'), 'utf8')).toContain('Apache License');
    },
  );

  it('mobilenetv2: chelsea is a cat, and a cat class leads its top 5', async () => {
    const out = (await (await runner('mobilenetv2')).run({ image: image(CHELSEA) })).output as {
      class: number;
      class_probs: Record<string, number>;
    };
    expect(out.class).toBeGreaterThanOrEqual(281); // ImageNet 281–285: tabby … Egyptian cat
    expect(out.class).toBeLessThanOrEqual(285);
    const top5 = Object.entries(out.class_probs)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([n]) => n);
    expect(top5.some((n) => /tabby|tiger cat|Egyptian cat/.test(n))).toBe(true);
  });

  const detections = (out: Record<string, unknown>) =>
    (out.detection_class_names as string[]).map((n, i) => ({
      name: n,
      score: (out.detection_scores as number[])[i],
      box: (out.detection_boxes as number[][])[i],
    }));

  it('yolox-nano: a person on astronaut, score ≥ 0.5, box inside the image and around her', async () => {
    const { b64, size } = astronaut();
    const out = (await (await runner('yolox-nano')).run({ image: b64 })).output;
    const [person] = detections(out).filter((d) => d.name === 'person');
    expect(person.score).toBeGreaterThanOrEqual(0.5);
    const [, x1, y2, x2] = person.box;
    for (const v of person.box) expect(v).toBeGreaterThanOrEqual(0);
    expect(Math.max(y2, x2)).toBeLessThanOrEqual(size);
    // She stands left of centre, from near the top to the bottom edge (top-left letterbox undone).
    expect(x1).toBeLessThan(size * 0.12);
    expect(y2).toBeGreaterThan(size * 0.9);
    expect(x2).toBeGreaterThan(size * 0.6);
    expect(x2).toBeLessThan(size * 0.82);
  });

  it('yolox-nano: a cat on chelsea, score ≥ 0.5, box inside the 451 × 300 image', async () => {
    const out = (await (await runner('yolox-nano')).run({ image: image(CHELSEA) })).output;
    const cats = detections(out).filter((d) => d.name === 'cat');
    expect(cats.length).toBeGreaterThan(0);
    expect(cats[0].score).toBeGreaterThanOrEqual(0.5);
    const [y1, x1, y2, x2] = cats[0].box;
    expect(Math.min(y1, x1)).toBeGreaterThanOrEqual(0);
    expect(y2).toBeLessThanOrEqual(300);
    expect(x2).toBeLessThanOrEqual(451);
    expect((y2 - y1) * (x2 - x1)).toBeGreaterThan(0.5 * 451 * 300);
  });

  it('deeplabv3-mobilenetv2: most of chelsea is cat, answered at the image size (logits resized back)', async () => {
    const out = (await (await runner('deeplabv3-mobilenetv2')).run({ image: image(CHELSEA) })).output as {
      preds: number[][];
    };
    expect(out.preds).toHaveLength(300);
    expect(out.preds[0]).toHaveLength(451);
    const counts = new Map<number, number>();
    for (const row of out.preds) for (const c of row) counts.set(c, (counts.get(c) ?? 0) + 1);
    const CAT = 8; // VOC: background, aeroplane, bicycle, bird, boat, bottle, bus, car, cat
    // The cat fills most of the photo: the pixels not background are (nearly) all cat.
    expect((counts.get(CAT) ?? 0) / (451 * 300)).toBeGreaterThan(0.6);
    expect((counts.get(CAT) ?? 0) / (451 * 300 - (counts.get(0) ?? 0))).toBeGreaterThan(0.95);
    expect(out.preds[150][225]).toBe(CAT);
  });

  it('a layout that the file contradicts stops the load: deeplab declared NCHW', () => {
    const entry = loadModel(path.join(REPO_ROOT, 'models', 'deeplabv3-mobilenetv2'), config);
    const nchw: ModelEntry = {
      ...entry,
      manifest: { ...entry.manifest, preprocess: { ...entry.manifest.preprocess, layout: 'NCHW' } },
    };
    const inputs = [{ name: 'sub_7', type: 'float32', shape: [1, 257, 257, 3] }];
    expect(() => checkSignature(nchw, inputs, [])).toThrow(
      /"sub_7" of .* has shape \[1,257,257,3\]; the manifest expects \[N,3,257,257\]/,
    );
    expect(checkSignature(entry, inputs, [])).toEqual({ size: 1, tensor: 'sub_7' });
  });
});

describe('weights provenance', () => {
  it('a real file whose digest the manifest does not record is served, labelled unverified', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-unverified-'));
    try {
      const generated = path.join(dir, 'generated');
      generateTestModels(generated);
      // The stand-in's bytes under the zoo's name: a "resnet50-v2-7.onnx" that is not the zoo's.
      fs.copyFileSync(path.join(generated, 'resnet50-test.onnx'), path.join(dir, 'resnet50-v2-7.onnx'));
      const entry = loadModel(path.join(REPO_ROOT, 'models', 'resnet50'), { ...config, MODELHUB_WEIGHTS_DIR: dir });
      expect(entry.weights).toBe('real');
      expect(await provenanceOf(entry)).toEqual({
        file: 'resnet50-v2-7.onnx',
        sha256: await sha256File(path.join(dir, 'resnet50-v2-7.onnx')),
        verification: 'unverified',
      });
      const test = loadModel(path.join(REPO_ROOT, 'models', 'resnet50'), {
        ...config,
        MODELHUB_TEST_MODELS: 'always',
        MODELHUB_GENERATED_DIR: generated,
      });
      expect((await provenanceOf(test))?.verification).toBe('test');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('no tracked file is an AGPL YOLOv8 file (by digest)', async () => {
    const AGPL = new Set([
      '83de8f0d2cd521e00ae2b138c340a03dece35b060b3898509bdc69afff417312', // yolov8n-int8-640.onnx
      'a892891617cbadd34d860f66a866393a8d4c487c49f1474e9b6d9e578332e56a', // yolov8n-seg-int8-320.onnx
    ]);
    const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((f) => f && fs.existsSync(path.join(REPO_ROOT, f)) && fs.statSync(path.join(REPO_ROOT, f)).size > 1e6);
    expect(tracked.length).toBeGreaterThanOrEqual(3); // the three shipped models at least
    for (const f of tracked) expect(AGPL.has(await sha256File(path.join(REPO_ROOT, f)))).toBe(false);
  });
});
