/**
 * Request validation at the door: the spec input against the task's schema, then for images a
 * cheap header read (no full decode) so that non-images and oversized images are refused
 * before they are queued. The worker decodes fully and still guards against what slips through.
 *
 * The header is read by `image-size` (synchronous, a few microseconds), not sharp: a sharp
 * metadata call is a libvips pipeline on the thread pool, and it was a fifth of the API's CPU per
 * job. Only the file's first IMAGE_HEADER_BYTES are scanned (shared/image-header.ts).
 */
import { IMAGE_HEADER_BYTES, readImageHeader, type HeaderSize } from '../shared/image-header.js';
import { SpecError } from '../shared/errors.js';
import { requireAllowedFormat } from '../shared/image-formats.js';
import { checkOutputAtDoor } from '../shared/output-bounds.js';
import type { ModelEntry } from '../shared/manifest.js';
import type { IntakeOptions } from '../shared/options/intake.js';
import { TASKS } from '../shared/tasks.js';
import { describeIssue } from '../shared/validation.js';
import { z } from 'zod';
import { DecodedImage } from './body-parse.js';
import { vouchForImage } from './image-job-queue.js';

/** The image bounds at the door. */
export type Limits = Pick<IntakeOptions, 'maxImageBytes' | 'maxImagePixels'>;

export interface ImageSize {
  width: number;
  height: number;
}

/** An image field the body parser already stripped, checked and decoded: taken as it is. */
const ParsedImage = z.instanceof(DecodedImage);

/** Each image task's input schema with its image field taking a DecodedImage (made once per schema). */
const parsedImageSchemas = new WeakMap<z.ZodType, z.ZodType | null>();

function withParsedImage(schema: z.ZodType): z.ZodType | null {
  if (!parsedImageSchemas.has(schema))
    parsedImageSchemas.set(
      schema,
      schema instanceof z.ZodObject && 'image' in schema.shape ? schema.extend({ image: ParsedImage }) : null,
    );
  return parsedImageSchemas.get(schema)!;
}

/**
 * An input's image may be a DecodedImage the body parser left in its text's place
 * (api/body-parse.ts): a large image is then not scanned again on the event loop, and its header
 * is read from the bytes already decoded. The input returned holds the image's text.
 */
export async function validateInput(
  entry: ModelEntry,
  body: unknown,
  limits: Limits & Pick<IntakeOptions, 'maxResultBytes'>,
): Promise<Record<string, unknown>> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new SpecError('INVALID_INPUT', 'input must be a JSON object');
  }
  const task = TASKS[entry.manifest.task];
  const image = (body as { image?: unknown }).image;
  const decoded = image instanceof DecodedImage ? image : undefined;
  const schema = decoded && task.modality === 'image' ? withParsedImage(task.input) : null;
  // A decoded image a task does not take as one is validated as the text it stands for.
  const parsed = (schema ?? task.input).safeParse(decoded && !schema ? { ...body, image: decoded.text } : body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const kind = issue.path[0] === 'image' && issue.code !== 'invalid_type' ? 'INVALID_IMAGE' : 'INVALID_INPUT';
    throw new SpecError(kind, describeIssue(issue));
  }
  const input = parsed.data as Record<string, unknown>;
  if (schema) input.image = decoded!.text;
  if (task.modality === 'image') {
    const size = await checkImageHeader(input.image as string, limits, schema ? decoded!.bytes : undefined);
    checkOutputAtDoor(entry, size.width, size.height, input, limits.maxResultBytes);
    // The schema (or the parser) found it base64: the queue copies it without a rescan.
    vouchForImage(input);
  }
  return input;
}

export async function checkImageHeader(base64: string, limits: Limits, decoded?: Uint8Array): Promise<ImageSize> {
  // 3 bytes per 4 characters: reject by length before allocating the decoded buffer.
  if (Math.floor((base64.length * 3) / 4) - 2 > limits.maxImageBytes) {
    throw new SpecError('IMAGE_TOO_LARGE', `image is larger than ${limits.maxImageBytes} bytes`);
  }
  const bytes = decoded
    ? Buffer.from(decoded.buffer, decoded.byteOffset, decoded.byteLength)
    : Buffer.from(base64, 'base64');
  if (bytes.length === 0) throw new SpecError('INVALID_IMAGE', 'image is empty');
  // Before sharp sees a byte: only allow-listed formats reach a decoder (SVG would be rendered).
  const format = requireAllowedFormat(bytes);
  let size: HeaderSize;
  try {
    size = readImageHeader(bytes);
  } catch {
    // The scan is bounded: a size that is not in the first bytes is not looked for further.
    if (bytes.length > IMAGE_HEADER_BYTES)
      throw new SpecError(
        'UNSUPPORTED_IMAGE_FORMAT',
        `the ${format} file's dimensions are not within its first ${IMAGE_HEADER_BYTES} bytes; ` +
          'save it with its metadata stripped or shortened',
      );
    throw new SpecError('INVALID_IMAGE', `image is not a decodable ${format} file`);
  }
  if (FORMAT_OF_TYPE[size.type ?? ''] !== format)
    throw new SpecError('INVALID_IMAGE', `image starts like ${format} but is not one`);
  const { width, height } = size;
  if (!width || !height) throw new SpecError('INVALID_IMAGE', 'image has no dimensions');
  if (width * height > limits.maxImagePixels) {
    throw new SpecError(
      'IMAGE_TOO_LARGE',
      `image is ${width}×${height} pixels; the limit is ${limits.maxImagePixels} pixels`,
    );
  }
  if (!endsCompletely(bytes, format)) {
    throw new SpecError('INVALID_IMAGE', `image is truncated: the ${format} file has no end marker`);
  }
  // EXIF orientations 5-8 swap the sides the worker decodes to.
  return (size.orientation ?? 1) >= 5 ? { width: height, height: width } : { width, height };
}

/** image-size's type names → ours. */
const FORMAT_OF_TYPE: Record<string, string> = { jpg: 'jpeg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tiff' };

/**
 * Cheap truncation check for the common formats (the header alone says nothing about the
 * data): PNG ends with an IEND chunk, JPEG with an EOI marker (some writers append padding),
 * GIF with a trailer byte. Other formats are left to the worker's full decode.
 */
export function endsCompletely(bytes: Buffer, format: string | undefined): boolean {
  const tail = bytes.subarray(Math.max(0, bytes.length - 64));
  switch (format) {
    case 'png':
      return tail.includes(Buffer.from('IEND', 'latin1'));
    case 'jpeg':
      return tail.includes(Buffer.from([0xff, 0xd9]));
    case 'gif':
      return tail.includes(0x3b);
    default:
      return true;
  }
}
