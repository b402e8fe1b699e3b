/**
 * Test stand-in for ResNet-50 (ONNX zoo resnet50-v2-7 signature): input `data` float32
 * [N,3,224,224] → 1×1 conv (3→16, stride 2) → ReLU → global average pool → dense 16→1000 →
 * `resnetv24_dense0_fwd` [N,1000] logits. Weights are seeded, so tests can compute the
 * expected answer for uniform-colour images by hand.
 */
import { OnnxGraphBuilder, seededRandom } from './onnx-builder.js';

export const RESNET_TEST = { input: 'data', output: 'resnetv24_dense0_fwd', hidden: 16, classes: 1000 } as const;

export interface ClassifierWeights {
  conv: Float32Array; // [hidden, 3]
  convBias: Float32Array; // [hidden]
  dense: Float32Array; // [hidden, classes] (Gemm B, no transpose)
  denseBias: Float32Array; // [classes]
}

export function classifierTestWeights(seed = 50): ClassifierWeights {
  const rnd = seededRandom(seed);
  const { hidden, classes } = RESNET_TEST;
  const sym = (scale: number) => (rnd() * 2 - 1) * scale;
  return {
    conv: Float32Array.from({ length: hidden * 3 }, () => sym(1)),
    convBias: Float32Array.from({ length: hidden }, () => sym(0.1)),
    dense: Float32Array.from({ length: hidden * classes }, () => sym(2)),
    denseBias: Float32Array.from({ length: classes }, () => sym(0.1)),
  };
}

export function buildClassifierTestModel(w = classifierTestWeights()): Uint8Array {
  const { hidden, classes, input, output } = RESNET_TEST;
  const g = new OnnxGraphBuilder('resnet50-test');
  g.input(input, 'float32', ['N', 3, 224, 224]);
  const k = g.constant('float32', [hidden, 3, 1, 1], w.conv);
  const kb = g.constant('float32', [hidden], w.convBias);
  const conv = g.op('Conv', [input, k, kb], { strides: [2, 2], kernel_shape: [1, 1] });
  const pooled = g.op('GlobalAveragePool', [g.op('Relu', [conv])]);
  const flat = g.op('Flatten', [pooled], { axis: 1 });
  const d = g.constant('float32', [hidden, classes], w.dense);
  const db = g.constant('float32', [classes], w.denseBias);
  g.op('Gemm', [flat, d, db], {}, output);
  g.output(output, 'float32', ['N', classes]);
  return g.toBytes();
}

/** Reference forward pass for a uniform image whose normalized channel values are `m`. */
export function classifierReferenceLogits(m: [number, number, number], w = classifierTestWeights()): Float64Array {
  const { hidden, classes } = RESNET_TEST;
  const h = Array.from({ length: hidden }, (_, j) =>
    Math.max(0, w.conv[j * 3] * m[0] + w.conv[j * 3 + 1] * m[1] + w.conv[j * 3 + 2] * m[2] + w.convBias[j]),
  );
  const out = new Float64Array(classes);
  for (let k = 0; k < classes; k++) {
    let s = w.denseBias[k];
    for (let j = 0; j < hidden; j++) s += h[j] * w.dense[j * classes + k];
    out[k] = s;
  }
  return out;
}
