/**
 * The bench's model folder: the model under test as its manifest says, the same model with
 * batching off (`<name>-nobatch`, max_batch_size 1), and `noop`: an identity ONNX graph on a
 * 1×1 image (three floats in, three out) that measures what the hub costs around inference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT } from '../../shared/config.js';
import { OnnxGraphBuilder } from '../../models/tools/onnx-builder.js';

export interface BenchModels {
  dir: string;
  model: string;
  nobatch: string;
  twin: string;
  noop: string;
  /** A 1×1 PNG, base64: the no-op model's input. */
  noopImage: string;
  cleanup(): void;
}

/** The manifest fields this copy rewrites (the rest is carried as it is). */
interface ManifestJson {
  name: string;
  model: Record<string, unknown>;
  labels?: string;
  example?: unknown;
  batching?: Record<string, unknown>;
}

function copyManifest(
  name: string,
  target: string,
  as: string,
  change: (m: ManifestJson) => void = () => undefined,
): void {
  const src = path.join(REPO_ROOT, 'models', name);
  const m = JSON.parse(fs.readFileSync(path.join(src, 'manifest.json'), 'utf8')) as ManifestJson;
  m.name = as;
  // Relative paths pointed into the model's own folder: make them absolute.
  if (typeof m.model.file === 'string') m.model.file = path.resolve(src, m.model.file);
  for (const key of ['tokenizer']) if (typeof m.model[key] === 'string') m.model[key] = path.resolve(src, m.model[key]);
  if (m.labels) m.labels = path.resolve(src, m.labels);
  delete m.example;
  change(m);
  fs.mkdirSync(path.join(target, as), { recursive: true });
  // Alternatives (`model.files`) are looked up by name beside the manifest: link the ones the
  // model's own folder holds (the shipped weights), so the copy serves the same file.
  const files = Array.isArray(m.model.files) ? (m.model.files as Array<{ name: string }>) : [];
  for (const { name: file } of files) {
    if (fs.existsSync(path.join(src, file))) fs.symlinkSync(path.join(src, file), path.join(target, as, file));
  }
  fs.writeFileSync(path.join(target, as, 'manifest.json'), JSON.stringify(m, null, 2));
}

export function buildNoopModel(): Uint8Array {
  const g = new OnnxGraphBuilder('noop');
  g.input('x', 'float32', ['N', 3, 1, 1]);
  g.op('Flatten', ['x'], { axis: 1 }, 'y');
  g.output('y', 'float32', ['N', 3]);
  return g.toBytes();
}

export async function benchModels(model: string): Promise<BenchModels> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelhub-bench-'));
  copyManifest(model, dir, model);
  // A twin for A/B runs (two workers with different settings, alive side by side).
  copyManifest(model, dir, `${model}-b`);
  copyManifest(model, dir, `${model}-nobatch`, (m) => {
    m.batching = { ...(m.batching ?? {}), max_batch_size: 1 };
  });
  const noopDir = path.join(dir, 'noop');
  fs.mkdirSync(noopDir);
  fs.writeFileSync(path.join(noopDir, 'noop.onnx'), buildNoopModel());
  fs.writeFileSync(path.join(noopDir, 'labels.txt'), 'red\ngreen\nblue\n');
  fs.writeFileSync(
    path.join(noopDir, 'manifest.json'),
    JSON.stringify({
      name: 'noop',
      task: 'image-classification',
      description: 'Benchmark no-op: an identity graph on a 1×1 image (the hub around inference).',
      model: { file: 'noop.onnx' },
      inputs: { image: 'x' },
      outputs: { scores: 'y' },
      preprocess: {
        resize: { mode: 'stretch', width: 1, height: 1 },
        channel_order: 'RGB',
        scale: 1,
        mean: [0, 0, 0],
        std: [1, 1, 1],
      },
      postprocess: { activation: 'none' },
      labels: 'labels.txt',
      batching: { max_batch_size: 32, max_queue_delay_ms: 5 },
    }),
  );
  const noopImage = (
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#336699' } })
      .png()
      .toBuffer()
  ).toString('base64');
  return {
    dir,
    model,
    nobatch: `${model}-nobatch`,
    twin: `${model}-b`,
    noop: 'noop',
    noopImage,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
