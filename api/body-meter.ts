/**
 * Counting a request body's bytes as they are read, so the door charges what is actually received
 * rather than what the headers claim. A body with a Content-Length is charged that length up front
 * (Node's parser never delivers more); a chunked body (no length) is charged as it arrives, by the
 * hooks the parse budget and the tenant's byte bucket register here. Compressed bodies never reach a
 * reader: `checkBodyMedia` refuses any Content-Encoding but identity (415), so the bytes counted are
 * the bytes parsed.
 */
import type { Request } from 'express';
import { SpecError } from '../shared/errors.js';

/** Called with the bytes just read of a body without a declared length; an error stops the read. */
export type MeterHook = (bytes: number) => SpecError | null;

export class BodyMeter {
  private readonly hooks: MeterHook[] = [];
  received = 0;

  constructor(
    /** Content-Length, or null for a chunked body. */
    readonly declared: number | null,
  ) {}

  onUndeclared(hook: MeterHook): void {
    this.hooks.push(hook);
  }

  /** Counts `bytes` read; returns the error that must stop the read, if any. */
  add(bytes: number): SpecError | null {
    this.received += bytes;
    if (this.declared !== null) return null;
    for (const hook of this.hooks) {
      const err = hook(bytes);
      if (err) return err;
    }
    return null;
  }
}

declare module 'express-serve-static-core' {
  interface Request {
    bodyMeter?: BodyMeter;
  }
}

/** The request's Content-Length; null when it has none (chunked, or no body). */
export function declaredLength(req: Pick<Request, 'get'>): number | null {
  const header = req.get('content-length');
  if (header === undefined) return null;
  const n = Number(header);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/** Whether the request carries a body at all (a length > 0, or Transfer-Encoding). */
export function hasBody(req: Pick<Request, 'get'>): boolean {
  const length = declaredLength(req);
  return length !== null ? length > 0 : req.get('transfer-encoding') !== undefined;
}

/** The request's meter, made on first use. */
export function meterOf(req: Request): BodyMeter {
  req.bodyMeter ??= new BodyMeter(declaredLength(req));
  return req.bodyMeter;
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/**
 * What a body may be sent as: no Content-Encoding but `identity` (a gzip body would inflate past
 * every byte limit the door charges; 415 rather than a bounded inflate, so what is counted is what is
 * parsed), and UTF-8 text only (RFC 8259 §8.1; the structural scan reads UTF-8 bytes). Returns the
 * 415 to answer, or null.
 */
export function checkBodyMedia(req: Pick<Request, 'get'>): SpecError | null {
  if (!hasBody(req)) return null;
  const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '')
    return new SpecError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Encoding "${encoding}" is not accepted: send the body uncompressed (identity)`,
    ).withReason('content_encoding');
  const charset = CHARSET.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
    return new SpecError(
      'UNSUPPORTED_MEDIA_TYPE',
      `charset "${charset}" is not accepted: request bodies are UTF-8 (RFC 8259 §8.1)`,
    ).withReason('charset');
  return null;
}

/**
 * Reads a whole body into memory, counting it on the request's meter: refused with 413 before a
 * byte is read when the declared length passes `limit`, and as soon as the bytes read pass it
 * (a chunked body is not read to its end first). On a refusal mid-body the connection is closed
 * after the answer, so the rest is not read either.
 */
export function readBody(req: Request, limit: number): Promise<Buffer> {
  const meter = meterOf(req);
  const tooLarge = () => new SpecError('BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
  if (meter.declared !== null && meter.declared > limit) return Promise.reject(tooLarge());
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const stop = (err: Error) => {
      cleanup();
      req.pause();
      // The rest of the body is not wanted: answer, then close rather than drain it.
      req.res?.setHeader('connection', 'close');
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      // Charged before the limit check: every byte received is paid for.
      const err = meter.add(chunk.length);
      if (size > limit) return stop(tooLarge());
      if (err) return stop(err);
      parts.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(parts, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new SpecError('INVALID_INPUT', `the request body could not be read (${err.message})`));
    };
    const onClose = () => {
      if (!req.complete) onError(new Error('the client closed the connection'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
