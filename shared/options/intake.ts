/**
 * Intake: what the API accepts before a job is queued (body sizes, the parse budget and threads,
 * JSON value counts, image bounds, batch uploads). Its variables (part of the configuration
 * schema, shared/config.ts), the options type the API's parsers and validators take, and its
 * resolution from a loaded configuration, done once by startApi and passed down.
 * A new intake setting: its variable in INTAKE_SETTINGS, its field (documented, with its
 * default) in IntakeOptions and its line in intakeOptions, all here; then the code that uses it.
 */
import { z } from 'zod';
import type { Config } from '../config.js';
import { int, ranged } from '../settings.js';

const GiB = 1024 ** 3;
/** Byte counts Redis and Node can hold: a batch of a pebibyte is a typo. */
const MAX_BYTES_SETTING = 2 ** 50;

/** Intake's variables (each read as MODELHUB_<name>; shared/config.ts envName). */
export const INTAKE_SETTINGS = {
  /** Largest accepted request body, bytes (413 past it). Unset: derived from MAX_IMAGE_BYTES (base64 + 64 KiB). */
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(2 * GiB)
    .optional(),
  /** Most JSON values (array items, object members) in one request body, counted before parsing. */
  MAX_JSON_VALUES: ranged(100_000, 1, 100_000_000),
  /** Request body bytes the API receives and parses at once, all requests together (503 past it). Unset: 4 × the body limit. */
  MAX_PARSING_BYTES: z.coerce.number().int().min(1024).max(MAX_BYTES_SETTING).optional(),
  /** Request bodies larger than this many bytes are parsed (and a job's image decoded) in a thread, not on the API's event loop; 0 = never. */
  OFFLOOP_PARSE_BYTES: int(64 * 1024),
  /** Largest decoded image file, bytes (413 past it). */
  MAX_IMAGE_BYTES: ranged(20 * 1024 * 1024, 1, GiB),
  /** Largest image in pixels, width × height (413 past it). */
  MAX_IMAGE_PIXELS: ranged(40_000_000, 1, 2 ** 40),
  /** Items one batch may hold. */
  BATCH_MAX_ITEMS: ranged(50_000, 1, 10_000_000),
  /** Bytes one batch upload may hold (its inputs are staged in Redis: keep it well under maxmemory). */
  BATCH_MAX_BYTES: ranged(128 * 1024 * 1024, 1024, MAX_BYTES_SETTING),
  /** Longest JSONL line, bytes; a longer line fails that item alone. */
  BATCH_MAX_LINE_BYTES: ranged(32 * 1024 * 1024, 1, 2 * GiB),
};

/** What the API's body parsers, input validation and batch uploads take. */
export interface IntakeOptions {
  /**
   * Largest request body, bytes (413 past it).
   * @defaultValue enough for the largest image as base64 plus 64 KiB of JSON, at least 1 MiB:
   * 28027564 (MODELHUB_MAX_BODY_BYTES unset)
   */
  bodyLimitBytes: number;
  /**
   * Request body bytes received and parsed at once, all requests together (503 past it).
   * @defaultValue 4 × bodyLimitBytes (MODELHUB_MAX_PARSING_BYTES unset)
   */
  parsingBytes: number;
  /**
   * Bodies larger than this are parsed (and a job's image decoded) in a thread; 0: never.
   * @defaultValue 65536 (MODELHUB_OFFLOOP_PARSE_BYTES)
   */
  offloopParseBytes: number;
  /**
   * Parse threads per API process; 0: half the cores, 1 to 4.
   * @defaultValue 0 (MODELHUB_OFFLOOP_THREADS)
   */
  offloopThreads: number;
  /**
   * Most JSON values (array items, object members) in one body or one batch line, counted before parsing.
   * @defaultValue 100000 (MODELHUB_MAX_JSON_VALUES)
   */
  maxJsonValues: number;
  /**
   * Largest decoded image file, bytes (413 past it).
   * @defaultValue 20971520 (MODELHUB_MAX_IMAGE_BYTES)
   */
  maxImageBytes: number;
  /**
   * Largest image in pixels, width × height, by its header (413 past it).
   * @defaultValue 40000000 (MODELHUB_MAX_IMAGE_PIXELS)
   */
  maxImagePixels: number;
  /**
   * Largest result a job may produce, bytes, estimated at the door from the image's size (422 past it).
   * @defaultValue 33554432 (MODELHUB_MAX_RESULT_BYTES)
   */
  maxResultBytes: number;
  /** @defaultValue 50000 (MODELHUB_BATCH_MAX_ITEMS) */
  batchMaxItems: number;
  /**
   * Bytes of one batch upload (a JSON upload is also held to bodyLimitBytes).
   * @defaultValue 134217728 (MODELHUB_BATCH_MAX_BYTES)
   */
  batchMaxBytes: number;
  /**
   * Longest JSONL line, bytes; a longer line fails that item alone.
   * @defaultValue 33554432 (MODELHUB_BATCH_MAX_LINE_BYTES)
   */
  batchMaxLineBytes: number;
}

export function intakeOptions(config: Config): IntakeOptions {
  const bodyLimitBytes = bodyLimit(config);
  return {
    bodyLimitBytes,
    parsingBytes: config.MAX_PARSING_BYTES ?? 4 * bodyLimitBytes,
    offloopParseBytes: config.OFFLOOP_PARSE_BYTES,
    offloopThreads: config.OFFLOOP_THREADS,
    maxJsonValues: config.MAX_JSON_VALUES,
    maxImageBytes: config.MAX_IMAGE_BYTES,
    maxImagePixels: config.MAX_IMAGE_PIXELS,
    maxResultBytes: config.MAX_RESULT_BYTES,
    batchMaxItems: config.BATCH_MAX_ITEMS,
    batchMaxBytes: config.BATCH_MAX_BYTES,
    batchMaxLineBytes: config.BATCH_MAX_LINE_BYTES,
  };
}

/**
 * The request body limit: MAX_BODY_BYTES, or enough for the largest image as base64 plus 64 KiB
 * of JSON, and at least 1 MiB (so with a small image limit an oversized image still gets the
 * error that names the image, 1004, rather than the body's).
 */
function bodyLimit(config: Pick<Config, 'MAX_BODY_BYTES' | 'MAX_IMAGE_BYTES'>): number {
  return config.MAX_BODY_BYTES ?? Math.max(1024 * 1024, Math.ceil(config.MAX_IMAGE_BYTES / 3) * 4 + 64 * 1024);
}
