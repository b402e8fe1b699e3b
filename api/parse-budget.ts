/**
 * The parse budget: request body bytes being received and parsed at once, across all requests and
 * tenants (MODELHUB_MAX_PARSING_BYTES), so bodies arriving together cannot take the API's memory;
 * past it a request is refused with 503 + Retry-After. Per-tenant rates are in rate-limits.ts.
 */
import type { NextFunction, Request, Response } from 'express';
import { SpecError } from '../shared/errors.js';
import { hasBody, meterOf } from './body-meter.js';

/** Bytes of request bodies being received and parsed at once, across all requests. */
export class ParseBudget {
  private inFlight = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * Middleware: reserves the body's declared size until the answer is sent; a chunked body (no
   * length) reserves what it has sent so far, counted as it is read (503 when that passes the budget
   * while others hold some of it).
   */
  middleware(bodyLimit: number) {
    return (req: Request, res: Response, next: NextFunction) => {
      if (!hasBody(req)) return next();
      const meter = meterOf(req);
      let held = 0;
      const busy = () =>
        new SpecError('BUSY', 'the API is busy receiving other requests; retry shortly', { 'Retry-After': '1' });
      if (meter.declared !== null) {
        const bytes = Math.min(meter.declared, bodyLimit);
        if (this.inFlight + bytes > this.maxBytes && this.inFlight > 0) return next(busy());
        held = bytes;
        this.inFlight += bytes;
      } else {
        meter.onUndeclared((bytes) => {
          if (released) return null;
          if (this.inFlight + bytes > this.maxBytes && this.inFlight > held) return busy();
          held += bytes;
          this.inFlight += bytes;
          return null;
        });
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.inFlight -= held;
      };
      res.once('finish', release);
      res.once('close', release);
      next();
    };
  }

  get bytesInFlight(): number {
    return this.inFlight;
  }
}
