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
}

function taps(srcSize: number, dstSize: number, from: number, length: number): Taps {
  const scale = srcSize / dstSize;
  const support = Math.max(1, scale);
  const count = Math.ceil(support * 2) + 1;
  const start = new Int32Array(length);
  const weights = new Float32Array(length * count);
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
  }
  return { start, count, weights };
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
 * ([3, tensorHeight, tensorWidth], planar). Separable: rows first, then columns.
 */
export function resampleToTensor(
  rgb: Uint8Array,
  width: number,
  height: number,
  t: ResampleTarget,
  norm: ChannelNorm[],
  out: Float32Array,
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
  const W = t.copyWidth;
  const rows = new Float32Array((rowTo - rowFrom + 1) * W * 3);
  const lastX = width - 1;
  for (let r = rowFrom; r <= rowTo; r++) {
    const src = r * width * 3;
    const dst = (r - rowFrom) * W * 3;
    for (let x = 0; x < W; x++) {
      let a = 0;
      let b = 0;
      let c = 0;
      const s0 = h.start[x];
      for (let k = 0; k < h.count; k++) {
        const w = h.weights[x * h.count + k];
        const sx = s0 + k;
        const p = src + (sx < 0 ? 0 : sx > lastX ? lastX : sx) * 3;
        a += rgb[p] * w;
        b += rgb[p + 1] * w;
        c += rgb[p + 2] * w;
      }
      rows[dst + x * 3] = a;
      rows[dst + x * 3 + 1] = b;
      rows[dst + x * 3 + 2] = c;
    }
  }
  // Pass 2: vertically, normalised, into the tensor's planes.
  const plane = t.tensorWidth * t.tensorHeight;
  const [n0, n1, n2] = norm;
  const rowBase = new Int32Array(v.count);
  for (let y = 0; y < t.copyHeight; y++) {
    const dstRow = (y + t.padTop) * t.tensorWidth + t.padLeft;
    const s0 = v.start[y];
    for (let k = 0; k < v.count; k++) rowBase[k] = (Math.min(rowTo, Math.max(rowFrom, s0 + k)) - rowFrom) * W * 3;
    const wBase = y * v.count;
    for (let x = 0; x < W; x++) {
      let a = 0;
      let b = 0;
      let c = 0;
      const px = x * 3;
      for (let k = 0; k < v.count; k++) {
        const w = v.weights[wBase + k];
        const p = rowBase[k] + px;
        a += rows[p] * w;
        b += rows[p + 1] * w;
        c += rows[p + 2] * w;
      }
      const d = dstRow + x;
      const px3 = [a, b, c];
      out[d] = px3[n0.src] * n0.mul + n0.add;
      out[plane + d] = px3[n1.src] * n1.mul + n1.add;
      out[2 * plane + d] = px3[n2.src] * n2.mul + n2.add;
    }
  }
}
