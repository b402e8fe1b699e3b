/**
 * Result-size bounds, checked before a result is built (in the API at the door, where the image's
 * size is known from its header, and again in the worker before postprocessing allocates): the
 * spec's nested-array encodings grow with the image (a 3000×3000 `array` segmentation is ~190 MB
 * of JSON), so they are refused past the model's result limit with an error naming the compact
 * encodings. The limit is MAX_RESULT_BYTES, or a model's lower `limits.max_result_bytes`.
 */
import { SpecError } from './errors.js';
import { labelCount, type ModelEntry } from './manifest.js';
import type { MaskEncoding } from './tasks.js';

/** Worst-case JSON bytes per value: a float32 printed as a JS number ("0.12345678912345678,"), a class id, a boolean. */
const JSON_BYTES = { probability: 20, classId: 4, flag: 6 } as const;
/** A 16-bit PNG sample, base64, incompressible worst case. */
const PNG_BYTES_PER_16BIT_SAMPLE = 3;

/** `maxResultBytes`: the hub's bound (MODELHUB_MAX_RESULT_BYTES), lowered by the manifest's own. */
export function resultLimitBytes(entry: ModelEntry, maxResultBytes: number): number {
  const own = entry.manifest.limits.max_result_bytes;
  return own ? Math.min(own, maxResultBytes) : maxResultBytes;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

function tooLarge(
  what: string,
  width: number,
  height: number,
  bytes: number,
  limit: number,
  bytesPerPixel: number,
  alternative: string,
): SpecError {
  const maxPixels = Math.floor(limit / bytesPerPixel);
  return new SpecError(
    'OUTPUT_TOO_LARGE',
    `${what} of a ${width}×${height} image would be about ${mb(bytes)}, over this model's result limit of ${mb(limit)} (about ${maxPixels} pixels in this form); ${alternative}`,
  );
}

/** Semantic segmentation: `array` and `per_class_probs` grow with pixels (× classes). */
export function checkSegmentationOutput(
  width: number,
  height: number,
  numClasses: number,
  options: { encoding: MaskEncoding; per_class_probs: boolean },
  limit: number,
): void {
  const planes = options.per_class_probs ? Math.max(1, numClasses) : 1;
  const perPixel =
    options.encoding === 'array'
      ? planes * JSON_BYTES.probability + JSON_BYTES.classId
      : options.per_class_probs
        ? planes * PNG_BYTES_PER_16BIT_SAMPLE
        : 0;
  const bytes = width * height * perPixel;
  if (bytes <= limit) return;
  const what = options.per_class_probs
    ? `per_class_probs (${planes} classes) in encoding "${options.encoding}"`
    : `encoding "${options.encoding}"`;
  throw tooLarge(what, width, height, bytes, limit, perPixel, 'use encoding "rle" or "png" without per_class_probs');
}

/** Instance segmentation: `array` masks are one boolean per pixel per detection. */
export function checkInstanceMasksOutput(
  width: number,
  height: number,
  detections: number,
  encoding: MaskEncoding,
  limit: number,
): void {
  if (encoding !== 'array') return;
  const perPixel = Math.max(1, detections) * JSON_BYTES.flag;
  const bytes = width * height * perPixel;
  if (bytes <= limit) return;
  throw tooLarge(
    `${detections} masks in mask_encoding "array"`,
    width,
    height,
    bytes,
    limit,
    perPixel,
    'use mask_encoding "rle" or "png", or fewer max_detections',
  );
}

/** The API's check at the door, from the image's header size and the validated options. */
export function checkOutputAtDoor(
  entry: ModelEntry,
  width: number,
  height: number,
  input: Record<string, unknown>,
  maxResultBytes: number,
): void {
  const limit = resultLimitBytes(entry, maxResultBytes);
  if (entry.manifest.task === 'semantic-segmentation') {
    // Without a labels file the class count is known only to the worker (it checks again).
    const classes = labelCount(entry.labels) || 2;
    checkSegmentationOutput(
      width,
      height,
      classes,
      input as { encoding: MaskEncoding; per_class_probs: boolean },
      limit,
    );
  } else if (entry.manifest.task === 'instance-segmentation') {
    // At least one mask's worth: the number of detections is known only after inference.
    checkInstanceMasksOutput(width, height, 1, (input.mask_encoding as MaskEncoding | undefined) ?? 'array', limit);
  }
}
