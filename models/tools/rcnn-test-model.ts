/**
 * Test stand-ins for the ONNX-zoo Faster R-CNN (FasterRCNN-10) and Mask R-CNN (MaskRCNN-10)
 * signatures: one unbatched image `image` float32 [3, H, W] in, boxes [N, 4] (x1, y1, x2, y2
 * in tensor pixels), labels int64 [N], scores [N] (and masks [N, 1, 28, 28]) out.
 * The boxes are fixed fractions of the input tensor's width and height (read with Shape), so
 * a test knows exactly where each must land in the input image after resizing and padding.
 */
import { OnnxGraphBuilder } from './onnx-builder.js';

export const FASTER_RCNN_TEST = { input: 'image', boxes: '6379', labels: '6381', scores: '6383' } as const;
export const MASK_RCNN_TEST = { input: 'image', boxes: '6568', labels: '6570', scores: '6572', masks: '6887' } as const;

export const MASK_SIZE = 28;

/** Each detection: box as fractions [x1, y1, x2, y2] of the tensor's [W, H, W, H], zoo label (1..80), score, mask pattern. */
export const RCNN_TEST_DETECTIONS = [
  { fractions: [0.1, 0.2, 0.5, 0.6], label: 1, score: 0.98, mask: 'full' },
  { fractions: [0.55, 0.05, 0.95, 0.45], label: 3, score: 0.85, mask: 'left-half' },
  // Runs past the right and bottom edges: clamped box, mask cut at the border.
  { fractions: [0.6, 0.5, 1.1, 1.2], label: 18, score: 0.7, mask: 'top-half' },
  { fractions: [0.2, 0.7, 0.3, 0.8], label: 80, score: 0.3, mask: 'full' },
] as const;

/** Mask probabilities (28 × 28, row-major) of each pattern: 0.9 inside, 0.1 outside. */
export function rcnnTestMask(pattern: (typeof RCNN_TEST_DETECTIONS)[number]['mask']): Float32Array {
  const m = new Float32Array(MASK_SIZE * MASK_SIZE);
  for (let y = 0; y < MASK_SIZE; y++) {
    for (let x = 0; x < MASK_SIZE; x++) {
      const on =
        pattern === 'full' ||
        (pattern === 'left-half' && x < MASK_SIZE / 2) ||
        (pattern === 'top-half' && y < MASK_SIZE / 2);
      m[y * MASK_SIZE + x] = on ? 0.9 : 0.1;
    }
  }
  return m;
}

function buildRcnn(
  names: { input: string; boxes: string; labels: string; scores: string; masks?: string },
  graphName: string,
): Uint8Array {
  const n = RCNN_TEST_DETECTIONS.length;
  const g = new OnnxGraphBuilder(graphName);
  g.input(names.input, 'float32', [3, 'H', 'W']);
  const shape = g.op('Shape', [names.input]);
  const whwh = g.op('Gather', [shape, g.constant('int64', [4], [2, 1, 2, 1])], { axis: 0 });
  const scale = g.op('Cast', [whwh], { to: 1 /* FLOAT */ });
  const fractions = g.constant(
    'float32',
    [n, 4],
    RCNN_TEST_DETECTIONS.flatMap((d) => [...d.fractions]),
  );
  g.op('Mul', [fractions, scale], {}, names.boxes);
  g.op(
    'Identity',
    [
      g.constant(
        'int64',
        [n],
        RCNN_TEST_DETECTIONS.map((d) => d.label),
      ),
    ],
    {},
    names.labels,
  );
  g.op(
    'Identity',
    [
      g.constant(
        'float32',
        [n],
        RCNN_TEST_DETECTIONS.map((d) => d.score),
      ),
    ],
    {},
    names.scores,
  );
  g.output(names.boxes, 'float32', [n, 4]);
  g.output(names.labels, 'int64', [n]);
  g.output(names.scores, 'float32', [n]);
  if (names.masks) {
    const masks = RCNN_TEST_DETECTIONS.flatMap((d) => Array.from(rcnnTestMask(d.mask)));
    g.op('Identity', [g.constant('float32', [n, 1, MASK_SIZE, MASK_SIZE], masks)], {}, names.masks);
    g.output(names.masks, 'float32', [n, 1, MASK_SIZE, MASK_SIZE]);
  }
  return g.toBytes();
}

export const buildFasterRcnnTestModel = (): Uint8Array => buildRcnn(FASTER_RCNN_TEST, 'faster-rcnn-test');
export const buildMaskRcnnTestModel = (): Uint8Array => buildRcnn(MASK_RCNN_TEST, 'mask-rcnn-test');
