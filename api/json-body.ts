/**
 * The API's JSON body parser. Bytes are received by readBody (counted as read, 413 at the body
 * limit, uncompressed UTF-8 only: 415 otherwise), then
 * parsed by parseJsonBytes: on the event loop when small (a thread hop costs more than it
 * saves), in an offload thread past `offloopBytes`, so one 25 MB body does not stall every
 * other tenant's requests for the ~100 ms its scan, parse and base64 decode take. Bodies are
 * parsed as JSON whatever their content type (`curl -d` sends form-encoded by default).
 */
import type { NextFunction, Request, Response } from 'express';
import { SpecError } from '../shared/errors.js';
import { checkBodyMedia, hasBody, readBody } from './body-meter.js';
import { ownBuffer, type OffloopPool } from '../shared/offloop/pool.js';
import type { ApiContext } from './context.js';
import { MAX_JSON_DEPTH } from './schemas.js';
import {
  parseJsonBytes,
  withDecodedImage,
  type ParseLimits,
  type ParseOutcome,
  type ThreadParseOutcome,
} from './body-parse.js';

export interface JsonBodyOptions extends ParseLimits {
  /** Largest body, bytes (413 past it). */
  limit: number;
  /** Bodies larger than this are parsed in `pool`; 0 = every body on the event loop. */
  offloopBytes: number;
  pool: OffloopPool;
}

export function jsonBody(options: JsonBodyOptions) {
  const limits: ParseLimits = {
    maxDepth: options.maxDepth,
    maxValues: options.maxValues,
    maxImageBytes: options.maxImageBytes,
  };

  async function parse(bytes: Buffer): Promise<ParseOutcome> {
    if (options.offloopBytes === 0 || bytes.length <= options.offloopBytes) return parseJsonBytes({ ...limits, bytes });
    // Moved, not copied: the request's buffer is not read again on this thread.
    const buffer = ownBuffer(bytes);
    const outcome = await options.pool.run<ThreadParseOutcome>(
      'parseInThread',
      { ...limits, bytes: new Uint8Array(buffer) },
      [buffer],
    );
    // The image's text came back once, inside the body.
    return withDecodedImage(outcome);
  }

  return (req: Request, _res: Response, next: NextFunction) => {
    if (!hasBody(req)) return next();
    const refused = checkBodyMedia(req);
    if (refused) return next(refused);
    readBody(req, options.limit)
      .then(parse)
      .then(
        (outcome) => {
          if (!outcome.ok) return next(new SpecError(outcome.kind, outcome.message));
          // A job's image, when decoded, is in the body as a DecodedImage (body-parse.ts).
          req.body = outcome.body;
          next();
        },
        (thrown: unknown) => next(thrown),
      );
  };
}

/** The API's settings for jsonBody. */
export function jsonBodyOptions(ctx: Pick<ApiContext, 'options' | 'offloop'>): JsonBodyOptions {
  const { intake } = ctx.options;
  return {
    limit: intake.bodyLimitBytes,
    offloopBytes: intake.offloopParseBytes,
    maxDepth: MAX_JSON_DEPTH,
    maxValues: intake.maxJsonValues,
    maxImageBytes: intake.maxImageBytes,
    pool: ctx.offloop,
  };
}
