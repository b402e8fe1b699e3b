/**
 * Test stand-in for torchvision's DeepLabV3 export: `input` float32 [N, 3, H, W] (ImageNet-
 * normalized RGB) → a 1×1 convolution to 21 Pascal VOC logits → `out` [N, 21, H, W]. The
 * weights favour background everywhere except strongly red (person), green (car) or blue
 * (boat) pixels, so a test can draw coloured shapes and compute each pixel's answer.
 */
import { OnnxGraphBuilder } from './onnx-builder.js';

export const DEEPLAB_TEST = { input: 'input', output: 'out', classes: 21 } as const;

export const VOC = { background: 0, boat: 4, car: 7, person: 15 } as const;

/** Weights [21, 3] (per class, per normalized RGB channel) and biases [21]. */
export function deeplabTestWeights(): { weights: Float32Array; bias: Float32Array } {
  const weights = new Float32Array(DEEPLAB_TEST.classes * 3);
  const bias = new Float32Array(DEEPLAB_TEST.classes);
  bias[VOC.background] = 1;
  weights.set([2, -1, -1], VOC.person * 3);
  weights.set([-1, 2, -1], VOC.car * 3);
  weights.set([-1, -1, 2], VOC.boat * 3);
  // Every other class: a constant logit of -2, never the top class.
  for (let c = 0; c < DEEPLAB_TEST.classes; c++) if (!(Object.values(VOC) as number[]).includes(c)) bias[c] = -2;
  return { weights, bias };
}

/** The model's logits for one normalized RGB pixel. */
export function deeplabReferenceLogits(rgbNorm: [number, number, number]): number[] {
  const { weights, bias } = deeplabTestWeights();
  return Array.from(
    bias,
    (b, c) => b + weights[c * 3] * rgbNorm[0] + weights[c * 3 + 1] * rgbNorm[1] + weights[c * 3 + 2] * rgbNorm[2],
  );
}

export function buildDeeplabTestModel(): Uint8Array {
  const { input, output, classes } = DEEPLAB_TEST;
  const { weights, bias } = deeplabTestWeights();
  const g = new OnnxGraphBuilder('deeplabv3-test');
  g.input(input, 'float32', ['N', 3, 'H', 'W']);
  const k = g.constant('float32', [classes, 3, 1, 1], weights);
  const b = g.constant('float32', [classes], bias);
  g.op('Conv', [input, k, b], { kernel_shape: [1, 1] }, output);
  g.output(output, 'float32', ['N', classes, 'H', 'W']);
  return g.toBytes();
}
