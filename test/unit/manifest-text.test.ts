import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { ManifestError, loadModel } from '../../shared/manifest.js';

const base = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'models/bert-base-chinese/manifest.json'), 'utf8'));
const dirs: string[] = [];

function modelDir(manifest: unknown, files: string[] = []): { dir: string; generated: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelhub-text-manifest-'));
  dirs.push(root);
  const dir = path.join(root, 'bert');
  const generated = path.join(root, 'generated');
  fs.mkdirSync(dir);
  fs.mkdirSync(generated);
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  for (const f of files)
    fs.writeFileSync(path.join(f.startsWith('gen:') ? generated : dir, f.replace(/^gen:/, '')), 'x');
  return { dir, generated };
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('text model manifests', () => {
  it('pairs real weights with the first tokenizer file present beside them', () => {
    const { dir, generated } = modelDir(base, ['model.onnx', 'vocab.txt']);
    const entry = loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' });
    expect(entry.weights).toBe('real');
    expect(entry.tokenizerPath).toBe(path.join(dir, 'vocab.txt'));
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
    expect(loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' }).tokenizerPath).toBe(
      path.join(dir, 'tokenizer.json'),
    );
  });

  it('marks real weights without their tokenizer unavailable rather than pairing them with the test vocabulary', () => {
    const { dir, generated } = modelDir(base, ['model.onnx', 'gen:bert-test.onnx', 'gen:bert-test-vocab.txt']);
    const entry = loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' });
    expect(entry.modelPath).toBeNull();
    expect(entry.problem).toMatch(/tokenizer file not found/);
  });

  it('pairs the test model with the real vocabulary when the manifest names no test_tokenizer', () => {
    expect(base.model.test_tokenizer).toBeUndefined();
    const { dir, generated } = modelDir(base, ['gen:bert-test.onnx']);
    expect(loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' }).modelPath).toBeNull();
    fs.writeFileSync(path.join(dir, 'vocab.txt'), 'x');
    const entry = loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' });
    expect(entry.weights).toBe('test');
    expect(entry.tokenizerPath).toBe(path.join(dir, 'vocab.txt'));
  });

  it('uses a test model with a test_tokenizer only together with that generated vocabulary', () => {
    const manifest = { ...base, model: { ...base.model, test_tokenizer: 'bert-test-vocab.txt' } };
    const { dir, generated } = modelDir(manifest, ['gen:bert-test.onnx']);
    expect(loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' }).modelPath).toBeNull();
    fs.writeFileSync(path.join(generated, 'bert-test-vocab.txt'), 'x');
    const entry = loadModel(dir, { MODELHUB_GENERATED_DIR: generated, MODELHUB_TEST_MODELS: 'auto' });
    expect(entry.weights).toBe('test');
    expect(entry.tokenizerPath).toBe(path.join(generated, 'bert-test-vocab.txt'));
  });

  it('refuses a text manifest without a tokenizer, or with a wrong preprocess', () => {
    const noTokenizer = modelDir({ ...base, model: { file: 'model.onnx' } });
    expect(() =>
      loadModel(noTokenizer.dir, { MODELHUB_GENERATED_DIR: noTokenizer.generated, MODELHUB_TEST_MODELS: 'auto' }),
    ).toThrow(ManifestError);
    const badPre = modelDir({ ...base, preprocess: { lowercase: 'yes' } });
    expect(() =>
      loadModel(badPre.dir, { MODELHUB_GENERATED_DIR: badPre.generated, MODELHUB_TEST_MODELS: 'auto' }),
    ).toThrow(/preprocess/);
    const unknownKey = modelDir({ ...base, preprocess: { lower_case: true } });
    expect(() =>
      loadModel(unknownKey.dir, { MODELHUB_GENERATED_DIR: unknownKey.generated, MODELHUB_TEST_MODELS: 'auto' }),
    ).toThrow(/preprocess/);
  });

  it('refuses a pixel budget for batches of text (batching.max_batch_pixels is for image models)', () => {
    const pixels = modelDir({ ...base, batching: { ...base.batching, max_batch_pixels: 1000 } }, ['model.onnx']);
    expect(() =>
      loadModel(pixels.dir, { MODELHUB_GENERATED_DIR: pixels.generated, MODELHUB_TEST_MODELS: 'auto' }),
    ).toThrow(/batching\.max_batch_pixels is for image models/);
  });
});
