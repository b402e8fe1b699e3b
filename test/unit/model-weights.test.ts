/**
 * Where weights come from (model.files alternatives, MODELHUB_WEIGHTS_DIR, stand-ins on request)
 * and what a model file's declared shapes mean at load (fixed batch caps batching; fixed sizes
 * must match the manifest's resize).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModel, type ModelEntry } from '../../shared/manifest.js';
import { OnnxGraphBuilder } from '../../models/tools/onnx-builder.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { checkSignature, ModelSignatureError } from '../../worker/model-signature.js';
import { b64, solidImage } from '../helpers/images.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-weights-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const base = loadConfig({});

/** A classifier [batch, 3, size, size] → scores [batch, 3] (mean per channel). */
function tinyClassifier(batch: number | string, size: number | string): Uint8Array {
  const g = new OnnxGraphBuilder('tiny');
  g.input('x', 'float32', [batch, 3, size, size]);
  g.op('Flatten', [g.op('GlobalAveragePool', ['x'])], { axis: 1 }, 'scores');
  g.output('scores', 'float32', [batch, 3]);
  return g.toBytes();
}

function modelFolder(
  name: string,
  model: Record<string, unknown>,
  resize: Record<string, unknown> = { mode: 'stretch', width: 8, height: 8 },
  files: Record<string, Uint8Array> = {},
): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), bytes);
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      name,
      task: 'image-classification',
      model,
      inputs: { image: 'x' },
      outputs: { scores: 'scores' },
      preprocess: { resize },
      batching: { max_batch_size: 8, max_queue_delay_ms: 50 },
    }),
  );
  return dir;
}

describe('weights files', () => {
  it('takes the first alternative present, looking in MODELHUB_WEIGHTS_DIR before the manifest folder', () => {
    const weights = path.join(root, 'weights-dir');
    fs.mkdirSync(weights);
    const dir = modelFolder(
      'alts',
      { files: [{ name: 'big.onnx' }, { name: 'small.onnx', sha256: 'a'.repeat(64), license: 'MIT' }] },
      undefined,
      { 'small.onnx': tinyClassifier('N', 8) },
    );
    expect(loadModel(dir, base)).toMatchObject({
      weights: 'real',
      modelPath: path.join(dir, 'small.onnx'),
      weightsFile: { name: 'small.onnx', license: 'MIT' },
    });
    // The first alternative, found in the weights folder, wins over the second beside the manifest.
    fs.writeFileSync(path.join(weights, 'big.onnx'), tinyClassifier('N', 8));
    const config = loadConfig({ MODELHUB_WEIGHTS_DIR: weights });
    expect(loadModel(dir, config)).toMatchObject({
      modelPath: path.join(weights, 'big.onnx'),
      weightsFile: { name: 'big.onnx' },
    });
    // A plain `file` is looked up by its name in the weights folder too.
    fs.writeFileSync(path.join(weights, 'plain.onnx'), tinyClassifier('N', 8));
    expect(loadModel(modelFolder('plain', { file: 'plain.onnx' }), config).modelPath).toBe(
      path.join(weights, 'plain.onnx'),
    );
  });

  it('says where it looked when no alternative is present, and refuses file together with files', () => {
    const entry = loadModel(
      modelFolder('none', { files: [{ name: 'a.onnx' }, { name: 'b.onnx' }] }),
      loadConfig({ MODELHUB_WEIGHTS_DIR: '/nowhere' }),
    );
    expect(entry.modelPath).toBeNull();
    expect(entry.problem).toContain('/nowhere/a.onnx');
    expect(entry.problem).toContain('/nowhere/b.onnx');
    expect(() => loadModel(modelFolder('both', { file: 'a.onnx', files: [{ name: 'b.onnx' }] }), base)).toThrow(
      /either model.file or model.files/,
    );
    expect(() => loadModel(modelFolder('badname', { files: [{ name: '../x.onnx' }] }), base)).toThrow(/no folders/);
  });

  it('serves the generated stand-in with MODELHUB_TEST_MODELS=always even where real weights are found', () => {
    const dir = path.join(base.MODELHUB_MODELS_DIR, 'yolov8');
    const weights = path.join(root, 'yolo-weights');
    fs.mkdirSync(weights);
    fs.writeFileSync(path.join(weights, 'yolov8n-int8-640.onnx'), tinyClassifier(1, 640));
    expect(loadModel(dir, loadConfig({ MODELHUB_WEIGHTS_DIR: weights })).weights).toBe('real');
    expect(loadModel(dir, loadConfig({ MODELHUB_WEIGHTS_DIR: weights, MODELHUB_TEST_MODELS: 'always' }))).toMatchObject(
      { weights: 'test', modelPath: expect.stringMatching(/yolov8-test\.onnx$/) },
    );
  });
});

describe('model signature at load', () => {
  const entry = (manifest: Partial<ModelEntry['manifest']>): ModelEntry => {
    const e = loadModel(path.join(base.MODELHUB_MODELS_DIR, 'yolov8'), loadConfig({ MODELHUB_TEST_MODELS: 'always' }));
    return { ...e, manifest: { ...e.manifest, ...manifest } };
  };
  const images = (shape: Array<number | string>) => [{ name: 'images', type: 'float32', shape }];
  const output = [{ name: 'output0', type: 'float32', shape: ['N', 84, 8400] }];

  it('caps the batch at a fixed first dimension and accepts dynamic ones', () => {
    expect(checkSignature(entry({}), images([1, 3, 640, 640]), output)).toEqual({ size: 1, tensor: 'images' });
    expect(checkSignature(entry({}), images(['batch', 3, 640, 640]), output)).toBeNull();
    expect(
      checkSignature(entry({}), images(['batch', 3, 'h', 'w']), [
        { name: 'output0', type: 'float32', shape: [4, 84, 8400] },
      ]),
    ).toEqual({ size: 4, tensor: 'output0' });
  });

  it('refuses fixed sizes the resize does not produce, naming model, tensor and both shapes', () => {
    const small = () => checkSignature(entry({}), images([1, 3, 320, 320]), output);
    expect(small).toThrow(ModelSignatureError);
    expect(small).toThrow(
      'model "yolov8": input "images" of yolov8-test.onnx has shape [1,3,320,320]; the manifest expects [N,3,640,640] (preprocess.layout NCHW, preprocess.resize letterbox 640×640)',
    );
    const varying = entry({
      preprocess: { ...entry({}).manifest.preprocess, resize: { mode: 'limit-side', max_side: 960, multiple_of: 32 } },
    });
    expect(() => checkSignature(varying, images(['N', 3, 640, 640]), output)).toThrow(
      /\[N,3,640,640\]; the manifest expects \[N,3,H,W\] .*limit-side, which gives sizes that vary/,
    );
    expect(() => checkSignature(entry({}), images(['N', 1, 640, 640]), output)).toThrow(/\[N,1,640,640\]/);
    expect(() => checkSignature(entry({}), images(['N', 3, 640]), output)).toThrow(/has shape \[N,3,640\]/);
  });

  it('a worker loading a batch-1 file forms batches of one, and every concurrent job succeeds', async () => {
    const dir = modelFolder(
      'fixed-batch',
      { file: 'tiny.onnx' },
      { mode: 'stretch', width: 8, height: 8 },
      { 'tiny.onnx': tinyClassifier(1, 8) },
    );
    const registry = new Registry();
    const runner = await ModelRunner.load(
      loadModel(dir, base),
      { kind: 'cpu' },
      taskOptions(base),
      createWorkerMetrics(registry),
    );
    expect(runner.batching.max_batch_size).toBe(1);
    expect(runner.batchLimit).toEqual({ size: 1, tensor: 'x' });
    expect(runner.weights).toEqual({
      file: 'tiny.onnx',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      kind: 'real',
      // The manifest records no digest for tiny.onnx: real, but nobody vouched for these bytes.
      verification: 'unverified',
    });
    const colors: Array<[number, number, number]> = [
      [250, 0, 0],
      [0, 250, 0],
      [0, 0, 250],
      [250, 0, 0],
      [0, 250, 0],
      [0, 0, 250],
    ];
    const results = await Promise.all(colors.map(async (c) => runner.run({ image: b64(await solidImage(16, 16, c)) })));
    expect(results.map((r) => r.output.class)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(results.every((r) => r.batchSize === 1)).toBe(true);
    const page = await registry.metrics();
    expect(page).toMatch(/modelhub_model_max_batch_size\{model="fixed-batch",device="cpu"\} 1/);
    expect(page).toContain(
      `modelhub_model_weights_info{model="fixed-batch",device="cpu",file="tiny.onnx",sha256="${runner.weights.sha256}",weights="real",verification="unverified"} 1`,
    );
    await runner.close();
  });

  it('a file whose fixed size disagrees with the manifest does not load', async () => {
    const dir = modelFolder(
      'wrong-size',
      { file: 'tiny.onnx' },
      { mode: 'stretch', width: 16, height: 16 },
      { 'tiny.onnx': tinyClassifier('N', 8) },
    );
    await expect(
      ModelRunner.load(loadModel(dir, base), { kind: 'cpu' }, taskOptions(base), createWorkerMetrics(new Registry())),
    ).rejects.toThrow(
      'model "wrong-size": input "x" of tiny.onnx has shape [N,3,8,8]; the manifest expects [N,3,16,16]',
    );
  });
});
