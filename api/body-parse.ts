/**
 * Turning a request body's bytes into its JSON value: the structural scan, the text decode and
 * JSON.parse, and for a job's image the base64 check and decode the header read needs. The same
 * functions run on the event loop (small bodies) and in an offload thread (large ones), so both
 * paths give the same answers. No imports beyond what a thread can load cheaply.
 */
import { isBase64, stripBase64Image } from '../shared/tasks.js';
import { moving, ownBuffer } from '../shared/offloop/pool.js';

/**
 * Depth and number of values of a JSON text, counted on its bytes (strings skipped), so a
 * 32 MB `[0,0,…]` is refused before parsing instead of after 16 M values were built.
 * Returns a problem, or null when within both limits.
 */
export function scanJsonStructure(buf: Uint8Array, maxDepth: number, maxElements: number): string | null {
  let depth = 0;
  let elements = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `request body is nested deeper than ${maxDepth} levels`;
      elements++;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c) elements++;
    if (elements > maxElements) return `request body has more than ${maxElements} JSON values`;
  }
  return null;
}

export interface ParseLimits {
  maxDepth: number;
  maxValues: number;
  /** Largest decoded image: a longer base64 text is left for the request's own size error, undecoded. */
  maxImageBytes: number;
}

export interface ParseRequest extends ParseLimits {
  /** UTF-8 (any other charset was refused with 415 before the body was read). */
  bytes: Uint8Array;
}

/**
 * A job's image as the parser leaves it in the parsed body, in place of its base64 text (at
 * `input.image` of a submission, `image` of a predict call): the text stripped and checked as
 * base64 (what the task's schema would store) and its decoded bytes, so validation reads the
 * image's header from them without a second pass over a large text. Only the parser makes one
 * (JSON.parse never yields a class instance), so validation takes it as checked. It serialises as
 * its text.
 */
export class DecodedImage {
  constructor(
    readonly text: string,
    readonly bytes: Uint8Array,
  ) {}

  toJSON(): string {
    return this.text;
  }
}

export type ParseOutcome =
  | { ok: true; body: unknown }
  /** INVALID_INPUT: past a structural limit; BAD_JSON: not JSON (or not decodable text). */
  | { ok: false; kind: 'INVALID_INPUT' | 'BAD_JSON'; message: string };

export function parseJsonBytes(req: ParseRequest): ParseOutcome {
  const problem = scanJsonStructure(req.bytes, req.maxDepth, req.maxValues);
  if (problem) return { ok: false, kind: 'INVALID_INPUT', message: problem };
  if (req.bytes.length === 0) return { ok: true, body: {} };
  let body: unknown;
  try {
    // TextDecoder drops a byte-order mark, as the body parser's decoder did.
    body = JSON.parse(new TextDecoder('utf-8').decode(req.bytes));
  } catch (err) {
    return { ok: false, kind: 'BAD_JSON', message: `request body is not valid JSON: ${(err as Error).message}` };
  }
  decodeJobImage(body, req.maxImageBytes);
  return { ok: true, body };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The object of a parsed body that holds a job's image: the body itself for predict (`{image}`), else `input`. */
function imageHolder(body: unknown): Record<string, unknown> | undefined {
  if (!isObject(body)) return undefined;
  const holder = typeof body.image === 'string' || body.image instanceof DecodedImage ? body : body.input;
  return isObject(holder) ? holder : undefined;
}

/**
 * A job's image (`{input: {image}}` for a submission, `{image}` for predict): its base64 text
 * stripped and checked, and, when within the image limit, decoded and put in the text's place as
 * a DecodedImage. Any other image text is left for validation to refuse or size.
 */
function decodeJobImage(body: unknown, maxImageBytes: number): void {
  const holder = imageHolder(body);
  if (typeof holder?.image !== 'string') return;
  const text = stripBase64Image(holder.image);
  if (text.length === 0 || !isBase64(text) || Math.floor((text.length * 3) / 4) - 2 > maxImageBytes) return;
  holder.image = new DecodedImage(text, Buffer.from(text, 'base64'));
}

/** The DecodedImage the parser left in a parsed body, if any. */
export function decodedImageOf(body: unknown): DecodedImage | undefined {
  const image = imageHolder(body)?.image;
  return image instanceof DecodedImage ? image : undefined;
}

/**
 * What a thread answers: a class instance does not survive the copy back, so the image goes back
 * as its text, in the body, and its bytes beside it (withDecodedImage puts them together again).
 */
export type ThreadParseOutcome =
  Exclude<ParseOutcome, { ok: true }> | { ok: true; body: unknown; image?: { bytes: Uint8Array } };

/**
 * The thread side (OffloopPool task): the parsed value comes back by copy, the decoded image is
 * moved. The image's text is copied once, inside the body: the copy back is paid on the loop
 * (about 1-2 ms per MB on the 2-core host), so not twice. (Copying rather than moving the buffers
 * both ways measured the same: bench/intake-loop.ts --handoff, and end to end.)
 */
export function parseInThread(req: ParseRequest): ThreadParseOutcome {
  const outcome = parseJsonBytes(req);
  const image = outcome.ok ? decodedImageOf(outcome.body) : undefined;
  if (!outcome.ok || !image) return outcome;
  imageHolder(outcome.body)!.image = image.text;
  const buffer = ownBuffer(image.bytes);
  return moving({ ...outcome, image: { bytes: new Uint8Array(buffer) } }, [buffer]);
}

/** A thread's answer on the loop: its image's text in the body and its bytes, made one DecodedImage again. */
export function withDecodedImage(outcome: ThreadParseOutcome): ParseOutcome {
  if (!outcome.ok || !outcome.image) return outcome.ok ? { ok: true, body: outcome.body } : outcome;
  const holder = imageHolder(outcome.body)!;
  const { bytes } = outcome.image;
  holder.image = new DecodedImage(
    holder.image as string,
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  );
  return { ok: true, body: outcome.body };
}
