/**
 * `modelhub_jobs_rejected_total{model,route,error_code,reason}`: submissions (a job, a predict, a
 * batch) the API refused, counted in the app's one error handler. Every refusal leaves through
 * it, wherever it is decided (auth, rate limits, the parse budget, body parsing, validation,
 * quotas, backpressure, Redis), so a new refusal is counted without code of its own: it throws
 * a SpecError, and `withReason()` where its kind has several causes.
 */
import type { Request } from 'express';
import type { Counter } from 'prom-client';
import type { SpecError } from '../shared/errors.js';
import { pathOf, type RouteLabels } from './route-labels.js';

/** The routes that submit work. */
export const SUBMIT_ROUTES: ReadonlySet<string> = new Set([
  '/v1/models/:model/jobs',
  '/v1/models/:model/predict',
  '/v1/models/:model/batches',
]);

/**
 * The model label of a submission to a model the hub does not serve: names are lower-case
 * letters, digits, '.', '_' and '-' starting with a letter or digit, so no model is called this,
 * and an unknown name never becomes a label value of its own (a scanner would make thousands).
 */
export const UNKNOWN_MODEL = '_unknown';

export class RefusalCounter {
  constructor(
    private readonly counter: Counter,
    private readonly routes: RouteLabels,
    private readonly isModel: (name: string) => boolean,
  ) {}

  /** Counts `spec` if it refused a submission. */
  count(req: Request, spec: SpecError): void {
    if (req.method !== 'POST') return;
    // An error about a job already accepted (predict's wait ran out, the API shutting down) is not a refusal.
    if (spec.requestId) return;
    const match = this.routes.match(req.method, pathOf(req));
    if (!match || !SUBMIT_ROUTES.has(match.route)) return;
    const name = match.params.model;
    this.counter.inc({
      model: name && this.isModel(name) ? name : UNKNOWN_MODEL,
      route: match.route,
      error_code: String(spec.errorCode),
      reason: spec.reason,
    });
  }
}
