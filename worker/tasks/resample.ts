/**
 * Resize and normalise in one pass, straight into a model's CHW float tensor: the small-image
 * path of preprocessing. A second sharp pipeline for the resize (raw RGB in, raw RGB out), then
 * a normalising loop over its output, costs several times the decode for small images
 * (text lines, thumbnails); this reads the decoded pixels once and writes floats once.
 *
 * The filter is libvips' linear kernel as sharp's `kernel: 'linear'` uses it: a triangle whose
 * support widens with the reduction factor (antialiased when shrinking), pixel centres aligned,
 * edges clamped. Results match sharp to within rounding (sharp rounds to 8-bit in between).
 *
 * The two passes run in WebAssembly SIMD (resample.wat): a pixel's channels are one f32x4, so a
 * tap is one load and one multiply-add where JavaScript did three. This file computes the taps
 * (cached per geometry), lays out the module's memory and copies the result into the tensor.
 */
import fs from 'node:fs';

interface ResampleKernels {
  memory: WebAssembly.Memory;
  horizontal(
    src: number,
    stride: number,
    rowCount: number,
    width: number,
    offsets: number,
    weights: number,
    taps: number,
    rows: number,
  ): void;
  vertical(
    width: number,
    height: number,
    rowAt: number,
    weights: number,
    taps: number,
    norm: number,
    out: number,
  ): void;
}

// Compiled once, synchronously (515 bytes). The memory is never grown: growing detaches its
// ArrayBuffer, and V8 then guards every typed-array access in the process against detached
// buffers (the JavaScript resampler ran at half speed after one grow, measured). Its 18 MiB
// (resample.wat) hold the largest call the worker makes, an image of 256 Ki pixels
// (OWN_RESAMPLE_MAX_PIXELS): source 1 MiB, pass 1's rows 4 MiB, result 3 MiB, and taps of at
// most about 8 bytes × 2 × (width + height) per axis. Untouched pages cost nothing.
const kernels = new WebAssembly.Instance(
  new WebAssembly.Module(fs.readFileSync(new URL('./resample.wasm', import.meta.url))),
).exports as unknown as ResampleKernels;
const heap = kernels.memory.buffer;
const heapBytes = new Uint8Array(heap);
const heapI32 = new Int32Array(heap);
const heapF32 = new Float32Array(heap);

/** Taps of one axis: for each output index, `count` source indices and weights (zero-padded). */
interface Taps {
  /** Taps per output index: the most non-zero weights any index has. */
  count: number;
  /** index[i * count + k]: source index of tap k of output i, clamped to the edge. */
  index: Int32Array;
  /** Its weight, normalised; an index with fewer taps ends in weights of 0 (they add nothing). */
  weights: Float32Array;
  /** Lowest and highest source index read. */
  first: number;
  last: number;
}

function computeTaps(srcSize: number, dstSize: number, from: number, length: number): Taps {
  const scale = srcSize / dstSize;
  const support = Math.max(1, scale);
  const span = Math.ceil(support * 2) + 1;
  const raw = new Float64Array(length * span);
  const starts = new Int32Array(length);
  const lo = new Int32Array(length);
  const hi = new Int32Array(length);
  let count = 1;
  for (let i = 0; i < length; i++) {
    const centre = (from + i + 0.5) * scale - 0.5;
    const start = Math.floor(centre - support) + 1;
    starts[i] = start;
    let sum = 0;
    for (let k = 0; k < span; k++) {
      const w = Math.max(0, 1 - Math.abs(start + k - centre) / support);
      raw[i * span + k] = w;
      sum += w;
    }
    for (let k = 0; k < span; k++) raw[i * span + k] /= sum;
    // The triangle's ends often weigh exactly 0: skipping them changes no sum.
    let a = 0;
    let b = span;
    while (a < b && raw[i * span + a] === 0) a++;
    while (b > a && raw[i * span + b - 1] === 0) b--;
    lo[i] = a;
    hi[i] = b;
    count = Math.max(count, b - a);
  }
  const index = new Int32Array(length * count);
  const weights = new Float32Array(length * count);
  let first = srcSize - 1;
  let last = 0;
  for (let i = 0; i < length; i++) {
    for (let k = 0; k < count; k++) {
      const tap = Math.min(lo[i] + k, hi[i] - 1);
      const at = Math.min(srcSize - 1, Math.max(0, starts[i] + tap));
      index[i * count + k] = at;
      weights[i * count + k] = lo[i] + k < hi[i] ? raw[i * span + tap] : 0;
      first = Math.min(first, at);
      last = Math.max(last, at);
    }
  }
  return { count, index, weights, first, last };
}

/**
 * The taps of recent geometries: a model's inputs come in few sizes (one text line's size for
 * every line of a page), and the taps depend only on the sizes.
 */
const tapsCache = new Map<string, Taps>();
const TAPS_CACHE_SIZE = 64;

function taps(srcSize: number, dstSize: number, from: number, length: number): Taps {
  const key = `${srcSize},${dstSize},${from},${length}`;
  let t = tapsCache.get(key);
  if (!t) {
    if (tapsCache.size >= TAPS_CACHE_SIZE) tapsCache.clear();
    t = computeTaps(srcSize, dstSize, from, length);
    tapsCache.set(key, t);
  }
  return t;
}

export interface ResampleTarget {
  /** Size the whole image is resized to. */
  resizeWidth: number;
  resizeHeight: number;
  /** The part of the resized image written: from (cropLeft, cropTop), copyWidth × copyHeight. */
  cropLeft: number;
  cropTop: number;
  copyWidth: number;
  copyHeight: number;
  /** Where it lands in the tensor (W × H per channel plane). */
  tensorWidth: number;
  tensorHeight: number;
  padLeft: number;
  padTop: number;
}

/** Per output channel: which RGB channel it reads, and value × mul + add. */
export interface ChannelNorm {
  src: number;
  mul: number;
  add: number;
}

const align16 = (n: number) => (n + 15) & ~15;
/** Bytes 0–47 of the memory: the normalisation (mul, add as f32x4; each lane's plane offset). */
const NORM_AT = 0;
const LAYOUT_FROM = 64;

/**
 * Resizes interleaved 8-bit RGB (`width` × `height`) and writes the normalised window into `out`
 * ([3, tensorHeight, tensorWidth], planar). Separable: rows first, then columns. With
 * `channels` 4 the pixels are RGBA and the alpha byte is skipped: for an image whose alpha is
 * 255 everywhere, the same floats as its RGB without a flattening pass. `norm` maps the three
 * output channels to the three source channels one to one (RGB or BGR order).
 */
export function resampleToTensor(
  rgb: Uint8Array,
  width: number,
  height: number,
  t: ResampleTarget,
  norm: ChannelNorm[],
  out: Float32Array,
  channels: 3 | 4 = 3,
): void {
  const h = taps(width, t.resizeWidth, t.cropLeft, t.copyWidth);
  const v = taps(height, t.resizeHeight, t.cropTop, t.copyHeight);
  const W = t.copyWidth;
  const H = t.copyHeight;
  const rowFrom = v.first;
  const rowCount = v.last - v.first + 1;
  const stride = width * channels;
  // The module's memory for this call; the source rows get 4 bytes of slack (a pixel is read as 4).
  const srcAt = LAYOUT_FROM;
  const offsetsAt = align16(srcAt + rowCount * stride + 4);
  const hWeightsAt = offsetsAt + align16(h.index.length * 4);
  const rowAtAt = hWeightsAt + align16(h.index.length * 4);
  const vWeightsAt = rowAtAt + align16(v.index.length * 4);
  const rowsAt = vWeightsAt + align16(v.index.length * 4);
  const outAt = rowsAt + rowCount * W * 16;
  if (outAt + 3 * W * H * 4 > heap.byteLength)
    throw new RangeError(
      `resample of ${width}×${height} to ${W}×${H} needs more than the ${heap.byteLength} bytes it has`,
    );

  heapBytes.set(rgb.subarray(rowFrom * stride, (rowFrom + rowCount) * stride), srcAt);
  for (let i = 0, o = offsetsAt >> 2; i < h.index.length; i++) heapI32[o + i] = h.index[i] * channels;
  heapF32.set(h.weights, hWeightsAt >> 2);
  for (let i = 0, o = rowAtAt >> 2; i < v.index.length; i++) heapI32[o + i] = rowsAt + (v.index[i] - rowFrom) * W * 16;
  heapF32.set(v.weights, vWeightsAt >> 2);
  // Lane s of a sum is source channel s: it is scaled as, and stored in the plane of, the output
  // channel that reads it.
  const plane = W * H;
  let lanes = 0;
  norm.forEach((n, c) => {
    heapF32[(NORM_AT >> 2) + n.src] = n.mul;
    heapF32[(NORM_AT >> 2) + 4 + n.src] = n.add;
    heapI32[(NORM_AT >> 2) + 8 + n.src] = c * plane * 4;
    lanes |= 1 << n.src;
  });
  if (norm.length !== 3 || lanes !== 7) throw new Error('resampleToTensor: norm must map channels one to one');

  kernels.horizontal(srcAt, stride, rowCount, W, offsetsAt, hWeightsAt, h.count, rowsAt);
  kernels.vertical(W, H, rowAtAt, vWeightsAt, v.count, NORM_AT, outAt);

  const tensorPlane = t.tensorWidth * t.tensorHeight;
  const result = outAt >> 2;
  for (let c = 0; c < 3; c++) {
    const from = result + c * plane;
    const to = c * tensorPlane + t.padTop * t.tensorWidth + t.padLeft;
    if (W === t.tensorWidth) out.set(heapF32.subarray(from, from + plane), to);
    else
      for (let y = 0; y < H; y++) out.set(heapF32.subarray(from + y * W, from + (y + 1) * W), to + y * t.tensorWidth);
  }
}
