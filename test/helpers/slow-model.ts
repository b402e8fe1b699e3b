/**
 * A deliberately slow classifier (seconds per batch on two cores) in a models folder of its own,
 * for tests about long batches: graceful shutdown mid-batch, locks kept alive during inference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OnnxGraphBuilder, seededRandom } from '../../models/tools/onnx-builder.js';

function buildSlowModel(layers: number, channels: number, size: number): Uint8Array {
  const rnd = seededRandom(7);
  const g = new OnnxGraphBuilder('slow');
  g.input('x', 'float32', ['N', 3, size, size]);
  const conv = (x: string, cin: number) => {
    const w = g.constant(
      'float32',
      [channels, cin, 3, 3],
      Array.from({ length: channels * cin * 9 }, () => (rnd() - 0.5) * 0.2),
    );
    return g.op('Relu', [g.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
  };
  let h = conv('x', 3);
  for (let i = 1; i < layers; i++) h = conv(h, channels);
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [h])], { axis: 1 });
  const dense = g.constant(
    'float32',
    [channels, 2],
    Array.from({ length: channels * 2 }, () => rnd() - 0.5),
  );
  g.op('MatMul', [pooled, dense], {}, 'scores');
  g.output('scores', 'float32', ['N', 2]);
  return g.toBytes();
}

/** Returns a models folder holding only the `slow` model. */
export function slowModelsDir(
  options: { layers?: number; channels?: number; size?: number; maxBatchSize?: number } = {},
): string {
  const { layers = 12, channels = 64, size = 320, maxBatchSize = 4 } = options;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-slow-'));
  fs.mkdirSync(path.join(root, 'slow'));
  fs.writeFileSync(path.join(root, 'slow', 'slow.onnx'), buildSlowModel(layers, channels, size));
  fs.writeFileSync(
    path.join(root, 'slow', 'manifest.json'),
    JSON.stringify({
      name: 'slow',
      task: 'image-classification',
      description: 'test: a slow classifier',
      model: { file: 'slow.onnx' },
      inputs: { image: 'x' },
      outputs: { scores: 'scores' },
      preprocess: { resize: { mode: 'stretch', width: size, height: size } },
      batching: { max_batch_size: maxBatchSize, max_queue_delay_ms: 200 },
    }),
  );
  return root;
}
