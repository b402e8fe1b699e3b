/**
 * Image decoding and geometry for every image task: base64 → sharp decode (EXIF orientation,
 * alpha flattened on white, grayscale/16-bit to 8-bit sRGB; small plain PNGs in JavaScript, to
 * the same pixels: png-decode.ts) → resize per the manifest →
 * normalized float32 CHW tensor, plus the geometry (./geometry.ts) that maps tensor coordinates
 * back to the input image's pixels.
 */
import { readImageHeader } from '../../shared/image-header.js';
import sharp, { type Sharp } from 'sharp';
import { SpecError } from '../../shared/errors.js';
import { requireAllowedFormat } from '../../shared/image-formats.js';
import type { ImagePreprocess, PadToBucket, ResizeSpec } from '../../shared/manifest.js';
import { bucketShape } from './buckets.js';
import { resampleToTensor } from './resample.js';
import { decodePlainPng } from './png-decode.js';
import { tensorBuffers } from '../backend/tensor-buffers.js';
import type { Geometry } from './geometry.js';

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
  /** Longest decode (or resize) of one image, seconds: sharp's own timeout, so its threads stop too. Default 10. */
  decodeTimeoutS?: number;
}

const DEFAULT_DECODE_TIMEOUT_S = 10;

function timeoutError(seconds: number): SpecError {
  return new SpecError(
    'IMAGE_DECODE_TIMEOUT',
    `decoding the image took longer than ${seconds} s; send a smaller or simpler image`,
  );
}

export interface DecodedImage {
  /** Interleaved 8-bit RGB, width × height × 3, EXIF orientation applied. */
  rgb: Buffer;
  width: number;
  height: number;
}

export interface ImageTensor {
  data: Float32Array;
  /** [3, H, W] */
  dims: [number, number, number];
  geometry: Geometry;
}

/** The image's bytes, checked: not empty, within the byte limit, an allowed format. */
function imageBytes(base64: string, limits: ImageLimits): Buffer {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length === 0) throw new SpecError('INVALID_IMAGE', 'image is empty');
  if (bytes.length > limits.maxImageBytes) {
    throw new SpecError('IMAGE_TOO_LARGE', `image is ${bytes.length} bytes; the limit is ${limits.maxImageBytes}`);
  }
  // Checked again here: the worker does not trust what the API let through.
  requireAllowedFormat(bytes);
  return bytes;
}

/** A sharp failure as the spec's error. */
function decodeError(err: unknown, limits: ImageLimits, timeoutS: number): SpecError {
  if (err instanceof SpecError) return err;
  const msg = (err as Error).message;
  if (/timeout/i.test(msg)) return timeoutError(timeoutS);
  if (/pixel limit/i.test(msg))
    return new SpecError('IMAGE_TOO_LARGE', `image has more than ${limits.maxImagePixels} pixels`);
  return new SpecError('INVALID_IMAGE', `image could not be decoded: ${msg}`);
}

/** The decode every path shares: one page, EXIF orientation applied, sharp's limits and timeout. */
function decoder(bytes: Buffer, limits: ImageLimits, timeoutS: number): Sharp {
  return sharp(bytes, { limitInputPixels: limits.maxImagePixels, failOn: 'error', pages: 1 })
    .timeout({ seconds: timeoutS })
    .rotate();
}

export async function decodeImage(base64: string, limits: ImageLimits): Promise<DecodedImage> {
  return decodeBytes(imageBytes(base64, limits), limits);
}

/** `small`: whether the header says the image is small (isSmallImage), when the caller read it already. */
async function decodeBytes(bytes: Buffer, limits: ImageLimits, small = isSmallImage(bytes)): Promise<DecodedImage> {
  const source = await decodeSource(bytes, limits, small);
  const { pixels, channels, width, height } = source;
  return { rgb: channels === 4 ? flattenOnWhite(pixels, width, height) : pixels, width, height };
}

/**
 * What the tensor is made from: interleaved RGB, or RGBA whose alpha is 255 everywhere, which
 * the resampler reads as it is (flattening it on white would copy the same values into a new
 * buffer: 50 µs of the worker's 0.4 ms of preprocessing per text line, measured).
 */
interface PixelSource {
  pixels: Buffer;
  channels: 3 | 4;
  width: number;
  height: number;
}

async function decodeSource(bytes: Buffer, limits: ImageLimits, small: boolean): Promise<PixelSource> {
  if (small) {
    // A small plain PNG: decoded here, bit-identical to sharp and without its fixed cost (png-decode.ts).
    const png = decodePlainPng(bytes, limits.maxImagePixels);
    if (png) {
      const { pixels, channels, width, height } = png;
      if (channels === 3 || isOpaque(pixels)) return png;
      return { pixels: flattenOnWhite(pixels, width, height), channels: 3, width, height };
    }
  }
  const { rgb, width, height } = await decodeWithSharp(bytes, limits, small);
  return { pixels: rgb, channels: 3, width, height };
}

/** Whether every alpha byte of interleaved RGBA is 255. */
function isOpaque(rgba: Buffer): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

/** The decode through sharp, whatever the format (exported for the PNG path's equivalence test). */
export async function decodeWithSharp(
  bytes: Buffer,
  limits: ImageLimits,
  small = isSmallImage(bytes),
): Promise<DecodedImage> {
  const timeoutS = limits.decodeTimeoutS ?? DEFAULT_DECODE_TIMEOUT_S;
  // A small image with alpha is flattened here, after the decode: libvips' flatten step costs
  // about a third of a small image's whole decode; for large images its threads are cheaper.
  try {
    let pipeline = decoder(bytes, limits, timeoutS);
    if (!small) pipeline = pipeline.flatten({ background: '#ffffff' });
    const { data, info } = await pipeline.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (small && info.channels === 4)
      return { rgb: flattenOnWhite(data, info.width, info.height), width: info.width, height: info.height };
    if (info.channels !== 3) throw new Error(`unexpected channel count ${info.channels}`);
    return { rgb: data, width: info.width, height: info.height };
  } catch (err) {
    throw decodeError(err, limits, timeoutS);
  }
}

/**
 * base64 → the model's tensor, decoding and resizing in one step where the image needs a
 * resize our own one-pass resampler does not do (page-sized images, enlargements): one sharp
 * pipeline decodes, orients, flattens and resizes, so libvips shrinks on load where the format
 * allows it (JPEG, WebP: decoding at 1/2, 1/4 or 1/8 when the reduction is that large) and no
 * full-size RGB buffer is made; the resized pixels are normalised in one pass. Everything else
 * (small images, no resize) decodes first and goes through imageToTensor.
 */
export async function loadImageTensor(
  base64: string,
  limits: ImageLimits,
  pre: ImagePreprocess,
  options: TensorOptions = {},
): Promise<ImageTensor> {
  const bytes = imageBytes(base64, limits);
  const timeoutS = limits.decodeTimeoutS ?? DEFAULT_DECODE_TIMEOUT_S;
  // A small image whose plan is a shrink (or no resize) in either orientation takes the
  // decode-first path whatever its EXIF orientation says: sharp's header read (a libuv hop and
  // about 0.1-0.2 ms of CPU per image, measured) would not change the path, so it is skipped.
  if (decodesFirstEitherWay(bytes, pre, options.bucket))
    return sourceToTensor(await decodeSource(bytes, limits, true), pre, options);
  let size: { width: number; height: number } | null = null;
  try {
    // The header only; its orientation-applied size is what the pipeline below produces.
    const meta = await sharp(bytes, { pages: 1 }).metadata();
    size = meta.autoOrient;
  } catch {
    // Unreadable header: the decode below reports it.
  }
  if (size && size.width > 0 && size.height > 0) {
    const plan = tensorPlan(pre, size.width, size.height, options.bucket);
    const resized = plan.resizeWidth !== size.width || plan.resizeHeight !== size.height;
    if (resized && !ownResampleFits(plan, size.width, size.height)) {
      let rgb: Buffer;
      try {
        const { data, info } = await decoder(bytes, limits, timeoutS)
          .flatten({ background: '#ffffff' })
          .toColourspace('srgb')
          .resize(plan.resizeWidth, plan.resizeHeight, { fit: 'fill', kernel: 'linear' })
          .raw()
          .toBuffer({ resolveWithObject: true });
        if (info.channels !== 3 || info.width !== plan.resizeWidth || info.height !== plan.resizeHeight)
          throw new Error(`unexpected output ${info.width}×${info.height}×${info.channels}`);
        rgb = data;
      } catch (err) {
        throw decodeError(err, limits, timeoutS);
      }
      return resizedToTensor(rgb, size.width, size.height, plan, pre);
    }
  }
  return imageToTensor(await decodeBytes(bytes, limits), pre, options);
}

/**
 * Whether the header (read in JavaScript, bounded) says the image is small and its plan either
 * keeps its size or shrinks it, for both its stored and its swapped (EXIF-rotated) size: then
 * loadImageTensor's choice is the decode-first path, known without sharp's header read.
 */
function decodesFirstEitherWay(bytes: Buffer, pre: ImagePreprocess, bucket: PadToBucket | undefined): boolean {
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = readImageHeader(bytes));
  } catch {
    return false;
  }
  if (!width || !height || width * height > SMALL_IMAGE_PIXELS) return false;
  return [
    [width, height],
    [height, width],
  ].every(([w, h]) => {
    const plan = tensorPlan(pre, w, h, bucket);
    return (plan.resizeWidth === w && plan.resizeHeight === h) || ownResampleFits(plan, w, h);
  });
}

/**
 * Whether the image's header says it is small enough to finish in JavaScript (unknown: no). The
 * header is looked for in a bounded prefix only: a crafted file is left to sharp (off this thread).
 */
function isSmallImage(bytes: Buffer): boolean {
  try {
    const { width, height } = readImageHeader(bytes);
    return width * height <= SMALL_IMAGE_PIXELS;
  } catch {
    return false;
  }
}

/**
 * Interleaved 8-bit RGBA → RGB composited on white, exactly as libvips' flatten does it
 * (integer arithmetic, truncating).
 */
export function flattenOnWhite(rgba: Buffer, width: number, height: number): Buffer {
  const pixels = width * height;
  const rgb = Buffer.allocUnsafe(pixels * 3);
  // floor(v / 255) in integer steps, exact for every v = a·x + (255 − a)·255 (checked over all
  // 256 × 256 pairs): the float division was a tenth of the worker's loop per RGBA text line.
  const div255 = (v: number) => (v + 1 + (v >> 8)) >> 8;
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += 4, o += 3) {
    const a = rgba[i + 3];
    if (a === 255) {
      rgb[o] = rgba[i];
      rgb[o + 1] = rgba[i + 1];
      rgb[o + 2] = rgba[i + 2];
      continue;
    }
    const white = (255 - a) * 255;
    rgb[o] = div255(a * rgba[i] + white);
    rgb[o + 1] = div255(a * rgba[i + 1] + white);
    rgb[o + 2] = div255(a * rgba[i + 2] + white);
  }
  return rgb;
}

function roundTo(value: number, multiple: number): number {
  return Math.max(multiple, Math.round(value / multiple) * multiple);
}

interface Plan {
  resizeWidth: number;
  resizeHeight: number;
  tensorWidth: number;
  tensorHeight: number;
  cropLeft: number;
  cropTop: number;
  padLeft: number;
  padTop: number;
  padValue: number | 'zero-after-normalize';
}

/** Pure geometry of each resize mode (unit-tested separately). */
export function planResize(spec: ResizeSpec, width: number, height: number): Plan {
  const base = { cropLeft: 0, cropTop: 0, padLeft: 0, padTop: 0, padValue: 0 as Plan['padValue'] };
  switch (spec.mode) {
    case 'none':
      return { ...base, resizeWidth: width, resizeHeight: height, tensorWidth: width, tensorHeight: height };
    case 'stretch':
      return {
        ...base,
        resizeWidth: spec.width,
        resizeHeight: spec.height,
        tensorWidth: spec.width,
        tensorHeight: spec.height,
      };
    case 'shorter-side': {
      const s = spec.size / Math.min(width, height);
      const rw = Math.max(spec.crop.width, Math.round(width * s));
      const rh = Math.max(spec.crop.height, Math.round(height * s));
      return {
        ...base,
        resizeWidth: rw,
        resizeHeight: rh,
        tensorWidth: spec.crop.width,
        tensorHeight: spec.crop.height,
        cropLeft: Math.floor((rw - spec.crop.width) / 2),
        cropTop: Math.floor((rh - spec.crop.height) / 2),
      };
    }
    case 'letterbox': {
      const s = Math.min(spec.width / width, spec.height / height);
      const rw = Math.max(1, Math.round(width * s));
      const rh = Math.max(1, Math.round(height * s));
      return {
        ...base,
        resizeWidth: rw,
        resizeHeight: rh,
        tensorWidth: spec.width,
        tensorHeight: spec.height,
        padLeft: spec.anchor === 'top-left' ? 0 : Math.floor((spec.width - rw) / 2),
        padTop: spec.anchor === 'top-left' ? 0 : Math.floor((spec.height - rh) / 2),
        padValue: spec.pad_value,
      };
    }
    case 'fixed-height': {
      const rw = Math.min(spec.max_width, Math.max(1, Math.ceil((spec.height * width) / height)));
      return {
        ...base,
        resizeWidth: rw,
        resizeHeight: spec.height,
        tensorWidth: spec.max_width,
        tensorHeight: spec.height,
        padValue: 'zero-after-normalize',
      };
    }
    case 'limit-side': {
      let s = Math.min(1, spec.max_side / Math.max(width, height));
      if (spec.min_side && Math.min(width, height) * s < spec.min_side) s = spec.min_side / Math.min(width, height);
      const rw = roundTo(width * s, spec.multiple_of);
      const rh = roundTo(height * s, spec.multiple_of);
      return { ...base, resizeWidth: rw, resizeHeight: rh, tensorWidth: rw, tensorHeight: rh };
    }
    case 'min-max': {
      let s = spec.min_size / Math.min(width, height);
      if (Math.max(width, height) * s > spec.max_size) s = spec.max_size / Math.max(width, height);
      const rw = Math.max(1, Math.round(width * s));
      const rh = Math.max(1, Math.round(height * s));
      const m = spec.multiple_of;
      return {
        ...base,
        // R-CNN exports (ONNX zoo, torchvision) pad the normalized image with zeros.
        padValue: 'zero-after-normalize',
        resizeWidth: rw,
        resizeHeight: rh,
        tensorWidth: Math.ceil(rw / m) * m,
        tensorHeight: Math.ceil(rh / m) * m,
      };
    }
  }
}

/**
 * The plan with its tensor padded on the right and bottom to the bucket shape (the manifest's
 * batching.pad_to_bucket); the image's place in the tensor, hence the geometry's mapping, does
 * not move. Only for modes whose tensor is the resized image itself (the manifest loader checks).
 */
export function padPlanToBucket(plan: Plan, bucket: PadToBucket): Plan {
  const shape = bucketShape({ width: plan.tensorWidth, height: plan.tensorHeight }, bucket);
  if (shape.width === plan.tensorWidth && shape.height === plan.tensorHeight) return plan;
  return { ...plan, tensorWidth: shape.width, tensorHeight: shape.height, padValue: bucket.pad_value };
}

/**
 * Small images that shrink are resized in one pass of our own, straight into the tensor (see
 * resample.ts): for them a second sharp pipeline costs more than the decode. Larger ones (and
 * enlargements) go through sharp, off the event loop and multi-threaded.
 */
const OWN_RESAMPLE_MAX_PIXELS = 256 * 1024;
/** Images up to this many pixels are flattened in JavaScript after decoding (see decodeImage). */
const SMALL_IMAGE_PIXELS = OWN_RESAMPLE_MAX_PIXELS;

export interface TensorOptions {
  /** sharp's timeout for the resize, seconds. Default 10. */
  timeoutS?: number;
  /** Pad the tensor to a shape bucket (absent: the tensor is the plan's own shape). */
  bucket?: PadToBucket;
}

/** Planes [3, H, W] → interleaved [H, W, 3] (TensorFlow's NHWC layout, one image). */
export function planesToInterleaved(planes: Float32Array, height: number, width: number): Float32Array {
  const plane = height * width;
  const out = new Float32Array(3 * plane);
  for (let p = 0, o = 0; p < plane; p++, o += 3) {
    out[o] = planes[p];
    out[o + 1] = planes[plane + p];
    out[o + 2] = planes[2 * plane + p];
  }
  return out;
}

function tensorPlan(pre: ImagePreprocess, width: number, height: number, bucket: PadToBucket | undefined): Plan {
  const own = planResize(pre.resize, width, height);
  return bucket ? padPlanToBucket(own, bucket) : own;
}

/** Whether our own one-pass resampler (resample.ts) does this resize: small images that shrink. */
function ownResampleFits(plan: Plan, width: number, height: number): boolean {
  return plan.resizeWidth <= width && plan.resizeHeight <= height && width * height <= OWN_RESAMPLE_MAX_PIXELS;
}

interface Normaliser {
  /** Source channel of each tensor channel (BGR models read the pixels' channels reversed). */
  src: number;
  mul: number;
  add: number;
}

function normalisers(pre: ImagePreprocess): Normaliser[] {
  const order = pre.channel_order === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  return order.map((src, c) => ({ src, mul: pre.scale / pre.std[c], add: -pre.mean[c] / pre.std[c] }));
}

/** Per tensor channel, the normalised value of a padding given as a raw pixel value (or 0 after normalising). */
export function bucketPadValues(pre: ImagePreprocess, padValue: PadToBucket['pad_value']): number[] {
  return normalisers(pre).map((n) => (padValue === 'zero-after-normalize' ? 0 : padValue * n.mul + n.add));
}

/**
 * A tensor of the plan's shape, its padding filled, the content left for the caller to write
 * (a recycled buffer: see tensor-buffers.ts; a page-sized one allocated afresh costs more than
 * normalising the page into it).
 */
function paddedTensor(plan: Plan, norm: readonly Normaliser[]): Float32Array {
  const plane = plan.tensorWidth * plan.tensorHeight;
  const data = tensorBuffers.float32(3 * plane);
  const { copyW, copyH } = contentSize(plan);
  if (copyW === plan.tensorWidth && copyH === plan.tensorHeight) return data; // no padding
  // Padding: a raw pixel value normalized like the image, or 0 in normalized space (PaddleOCR).
  // The whole plane is filled (the content overwrites its part): simple, and cheap next to the content.
  for (let c = 0; c < 3; c++) {
    const fill = plan.padValue === 'zero-after-normalize' ? 0 : plan.padValue * norm[c].mul + norm[c].add;
    data.fill(fill, c * plane, (c + 1) * plane);
  }
  return data;
}

function contentSize(plan: Plan): { copyW: number; copyH: number } {
  return {
    copyW: Math.min(plan.resizeWidth - plan.cropLeft, plan.tensorWidth - plan.padLeft),
    copyH: Math.min(plan.resizeHeight - plan.cropTop, plan.tensorHeight - plan.padTop),
  };
}

function tensorResult(data: Float32Array, plan: Plan, imageWidth: number, imageHeight: number): ImageTensor {
  const { copyW, copyH } = contentSize(plan);
  return {
    data,
    dims: [3, plan.tensorHeight, plan.tensorWidth],
    geometry: {
      imageWidth,
      imageHeight,
      tensorWidth: plan.tensorWidth,
      tensorHeight: plan.tensorHeight,
      scaleX: plan.resizeWidth / imageWidth,
      scaleY: plan.resizeHeight / imageHeight,
      padLeft: plan.padLeft,
      padTop: plan.padTop,
      cropLeft: plan.cropLeft,
      cropTop: plan.cropTop,
      contentWidth: copyW,
      contentHeight: copyH,
    },
  };
}

/** Resized interleaved RGB (resizeWidth × resizeHeight) → the normalised CHW tensor, in one pass. */
function resizedToTensor(
  pixels: Buffer,
  imageWidth: number,
  imageHeight: number,
  plan: Plan,
  pre: ImagePreprocess,
): ImageTensor {
  const norm = normalisers(pre);
  const data = paddedTensor(plan, norm);
  const { copyW, copyH } = contentSize(plan);
  const W = plan.tensorWidth;
  const plane = W * plan.tensorHeight;
  const [s0, s1, s2] = [norm[0].src, norm[1].src, norm[2].src];
  const [m0, m1, m2] = [norm[0].mul, norm[1].mul, norm[2].mul];
  const [a0, a1, a2] = [norm[0].add, norm[1].add, norm[2].add];
  for (let y = 0; y < copyH; y++) {
    let s = ((y + plan.cropTop) * plan.resizeWidth + plan.cropLeft) * 3;
    let d = (y + plan.padTop) * W + plan.padLeft;
    for (const end = d + copyW; d < end; d++, s += 3) {
      data[d] = pixels[s + s0] * m0 + a0;
      data[plane + d] = pixels[s + s1] * m1 + a1;
      data[2 * plane + d] = pixels[s + s2] * m2 + a2;
    }
  }
  return tensorResult(data, plan, imageWidth, imageHeight);
}

/** Decoded image → normalized float32 [3, H, W] per the manifest's preprocessing. */
export async function imageToTensor(
  image: DecodedImage,
  pre: ImagePreprocess,
  options: TensorOptions = {},
): Promise<ImageTensor> {
  return sourceToTensor({ pixels: image.rgb, channels: 3, width: image.width, height: image.height }, pre, options);
}

async function sourceToTensor(
  source: PixelSource,
  pre: ImagePreprocess,
  options: TensorOptions = {},
): Promise<ImageTensor> {
  const { timeoutS = DEFAULT_DECODE_TIMEOUT_S, bucket } = options;
  const { width, height } = source;
  const plan = tensorPlan(pre, width, height, bucket);
  const resized = plan.resizeWidth !== width || plan.resizeHeight !== height;
  if (resized && ownResampleFits(plan, width, height)) {
    const norm = normalisers(pre);
    const data = paddedTensor(plan, norm);
    const { copyW, copyH } = contentSize(plan);
    const target = { ...plan, copyWidth: copyW, copyHeight: copyH };
    resampleToTensor(source.pixels, width, height, target, norm, data, source.channels);
    return tensorResult(data, plan, width, height);
  }
  const rgb = source.channels === 4 ? flattenOnWhite(source.pixels, width, height) : source.pixels;
  let pixels = rgb;
  if (resized) {
    pixels = await sharp(rgb, { raw: { width, height, channels: 3 } })
      .timeout({ seconds: timeoutS })
      .resize(plan.resizeWidth, plan.resizeHeight, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer()
      .catch((err: Error) => {
        throw /timeout/i.test(err.message) ? timeoutError(timeoutS) : err;
      });
  }
  return resizedToTensor(pixels, width, height, plan, pre);
}
