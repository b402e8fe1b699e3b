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

/** A job's image, checked and decoded where the body was parsed; `text` is the body's own (stripped) string. */
export interface DecodedImage {
  text: string;
  bytes: Uint8Array;
}

export type ParseOutcome =
  | { ok: true; body: unknown; image?: DecodedImage }
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
  return { ok: true, body, ...decodeJobImage(body, req.maxImageBytes) };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A job's image (`{input: {image}}` for a submission, `{image}` for predict): its base64 text
 * stripped and checked, and decoded when within the image limit, so the API's header read needs
 * no second pass over it. The stripped text replaces the body's own, which is what validation
 * would store anyway; validation only trusts it for that very string.
 */
function decodeJobImage(body: unknown, maxImageBytes: number): { image?: DecodedImage } {
  if (!isObject(body)) return {};
  const input = typeof body.image === 'string' ? body : body.input;
  if (!isObject(input) || typeof input.image !== 'string') return {};
  const text = stripBase64Image(input.image);
  if (text.length === 0 || !isBase64(text) || Math.floor((text.length * 3) / 4) - 2 > maxImageBytes) return {};
  input.image = text;
  return { image: { text, bytes: Buffer.from(text, 'base64') } };
}

/** What a thread answers: the image's text is not sent beside the body, whose own string it is. */
export type ThreadParseOutcome =
  Exclude<ParseOutcome, { ok: true }> | { ok: true; body: unknown; image?: Pick<DecodedImage, 'bytes'> };

/**
 * The thread side (OffloopPool task): the parsed value comes back by copy, the decoded image is
 * moved. The image's text is copied once, inside the body: the copy back is paid on the loop
 * (about 1-2 ms per MB on the 2-core host), so not twice. (Copying rather than moving the buffers
 * both ways measured the same: bench/intake-loop.ts --handoff, and end to end.)
 */
export function parseInThread(req: ParseRequest): ThreadParseOutcome {
  const outcome = parseJsonBytes(req);
  if (!outcome.ok || !outcome.image) return outcome;
  const buffer = ownBuffer(outcome.image.bytes);
  return moving({ ...outcome, image: { bytes: new Uint8Array(buffer) } }, [buffer]);
}

/** The image text decodeJobImage left in a parsed body (`{input: {image}}` or `{image}`). */
export function jobImageText(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const input = typeof body.image === 'string' ? body : body.input;
  return isObject(input) && typeof input.image === 'string' ? input.image : undefined;
}
