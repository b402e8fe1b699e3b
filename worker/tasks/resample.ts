/**
 * Resize and normalise in one pass, straight into a model's CHW float tensor: the small-image
 * path of preprocessing. A second sharp pipeline for the resize (raw RGB in, raw RGB out), then
 * a normalising loop over its output, costs several times the decode for small images
 * (text lines, thumbnails); this reads the decoded pixels once and writes floats once.
 *
 * The filter is libvips' linear kernel as sharp's `kernel: 'linear'` uses it: a triangle whose
 * support widens with the reduction factor (antialiased when shrinking), pixel centres aligned,
 * edges clamped. Results match sharp to within rounding (sharp rounds to 8-bit in between).
 */

/** Source pixel taps of one output coordinate along one axis. */
interface Taps {
  /** First source index of each output index. */
  start: Int32Array;
  /** Taps per output index (the same for all). */
  count: number;
  /** weights[i * count + k]: weight of source start[i] + k (clamped to the edge), normalised. */
  weights: Float32Array;
  /**
   * The taps of index i with a weight other than 0: k from nonZeroFrom[i] to nonZeroTo[i]
   * (exclusive). The triangle's ends often weigh exactly 0; skipping them changes no sum.
   */
  nonZeroFrom: Int32Array;
  nonZeroTo: Int32Array;
  /** clamped[i * count + k]: source start[i] + k clamped to the edge (0 .. srcSize − 1). */
  clamped: Int32Array;
}

function computeTaps(srcSize: number, dstSize: number, from: number, length: number): Taps {
  const scale = srcSize / dstSize;
  const support = Math.max(1, scale);
  const count = Math.ceil(support * 2) + 1;
  const start = new Int32Array(length);
  const weights = new Float32Array(length * count);
  const nonZeroFrom = new Int32Array(length);
  const nonZeroTo = new Int32Array(length);
  const clamped = new Int32Array(length * count);
  for (let i = 0; i < length; i++) {
    const centre = (from + i + 0.5) * scale - 0.5;
    const first = Math.floor(centre - support) + 1;
    start[i] = first;
    let sum = 0;
    for (let k = 0; k < count; k++) {
      const w = Math.max(0, 1 - Math.abs(first + k - centre) / support);
      weights[i * count + k] = w;
      sum += w;
    }
    for (let k = 0; k < count; k++) weights[i * count + k] /= sum;
    let lo = 0;
    let hi = count;
    while (lo < hi && weights[i * count + lo] === 0) lo++;
    while (hi > lo && weights[i * count + hi - 1] === 0) hi--;
    nonZeroFrom[i] = lo;
    nonZeroTo[i] = hi;
    for (let k = 0; k < count; k++) clamped[i * count + k] = Math.min(srcSize - 1, Math.max(0, first + k));
  }
  return { start, count, weights, nonZeroFrom, nonZeroTo, clamped };
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

/**
 * Pass 1's rows, reused from call to call instead of a fresh zero-filled array per image (129 KB
 * for a text line). Safe: a call is synchronous, and pass 1 writes every value pass 2 reads. It
 * holds at most the largest call's rows: 3 MB, as this path takes images up to 256 Ki pixels.
 */
let rowsScratch = new Float32Array(0);

function scratchRows(length: number): Float32Array {
  if (rowsScratch.length < length) rowsScratch = new Float32Array(length);
  return rowsScratch;
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

/**
 * Resizes interleaved 8-bit RGB (`width` × `height`) and writes the normalised window into `out`
 * ([3, tensorHeight, tensorWidth], planar). Separable: rows first, then columns. With
 * `channels` 4 the pixels are RGBA and the alpha byte is skipped: for an image whose alpha is
 * 255 everywhere, the same floats as its RGB without a flattening pass.
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
  // Source rows the vertical taps need.
  let rowFrom = Infinity;
  let rowTo = -Infinity;
  for (let y = 0; y < t.copyHeight; y++) {
    rowFrom = Math.min(rowFrom, v.start[y]);
    rowTo = Math.max(rowTo, v.start[y] + v.count - 1);
  }
  rowFrom = Math.max(0, rowFrom);
  rowTo = Math.min(height - 1, rowTo);
  // Pass 1: each needed source row resized horizontally, 3 channels interleaved, as floats.
  // Hot loops read typed arrays from locals and keep the sums in scalars (no per-pixel arrays):
  // the arithmetic, and its order, is the straightforward loop's, so the floats are the same.
  // Each tap's source column comes clamped to the edge with the (cached) taps.
  const W = t.copyWidth;
  const rows = scratchRows((rowTo - rowFrom + 1) * W * 3);
  const hCount = h.count;
  const hWeights = h.weights;
  const hFrom = h.nonZeroFrom;
  const hTo = h.nonZeroTo;
  const hColumn = h.clamped;
  for (let r = rowFrom; r <= rowTo; r++) {
    const src = r * width * channels;
    let dst = (r - rowFrom) * W * 3;
    for (let x = 0; x < W; x++, dst += 3) {
      let a = 0;
      let b = 0;
      let c = 0;
      const w0 = x * hCount;
      for (let k = w0 + hFrom[x], end = w0 + hTo[x]; k < end; k++) {
        const w = hWeights[k];
        const p = src + hColumn[k] * channels;
        a += rgb[p] * w;
        b += rgb[p + 1] * w;
        c += rgb[p + 2] * w;
      }
      rows[dst] = a;
      rows[dst + 1] = b;
      rows[dst + 2] = c;
    }
  }
  // Pass 2: vertically, normalised, into the tensor's planes.
  const plane = t.tensorWidth * t.tensorHeight;
  const [n0, n1, n2] = norm;
  const vCount = v.count;
  const vWeights = v.weights;
  const rowBase = new Int32Array(vCount);
  // Output channel c reads source channel norm[c].src of the (a, b, c) sums.
  const [src0, src1, src2] = [n0.src, n1.src, n2.src];
  const [m0, m1, m2] = [n0.mul, n1.mul, n2.mul];
  const [d0, d1, d2] = [n0.add, n1.add, n2.add];
  for (let y = 0; y < t.copyHeight; y++) {
    const dstRow = (y + t.padTop) * t.tensorWidth + t.padLeft;
    const s0 = v.start[y];
    for (let k = 0; k < vCount; k++) rowBase[k] = (Math.min(rowTo, Math.max(rowFrom, s0 + k)) - rowFrom) * W * 3;
    const wBase = y * vCount;
    const kFrom = v.nonZeroFrom[y];
    const kTo = v.nonZeroTo[y];
    for (let x = 0, px = 0; x < W; x++, px += 3) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = kFrom; k < kTo; k++) {
        const w = vWeights[wBase + k];
        const p = rowBase[k] + px;
        a += rows[p] * w;
        b += rows[p + 1] * w;
        c += rows[p + 2] * w;
      }
      const d = dstRow + x;
      // The channel picks branch the same way for every pixel (predicted), unlike an indexed array.
      out[d] = (src0 === 0 ? a : src0 === 1 ? b : c) * m0 + d0;
      out[plane + d] = (src1 === 0 ? a : src1 === 1 ? b : c) * m1 + d1;
      out[2 * plane + d] = (src2 === 0 ? a : src2 === 1 ? b : c) * m2 + d2;
    }
  }
}
