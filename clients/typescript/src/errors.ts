/** Errors the SDK throws: the hub's spec errors, unreachable hubs, waits that ran out, bad webhooks. */
import type { Job, SpecErrorBody } from './types.js';

/**
 * A spec error answered by the hub (`success: false`), or the spec error of a job that failed or
 * was canceled. `error_code` and `error_msg` are the hub's; `status` is the HTTP status.
 */
export class ModelHubError extends Error {
  override name = 'ModelHubError';
  readonly error_code: number;
  readonly error_msg: string;
  /** HTTP status of the answer (for a failed job: the status the hub gives its error code). */
  readonly status: number;
  /** The job the error is about, when there is one. */
  readonly request_id?: string;
  /** Seconds to wait before retrying, from Retry-After (429). */
  readonly retryAfterS?: number;

  constructor(body: SpecErrorBody, status: number, retryAfterS?: number) {
    super(`${body.error_msg} (error_code ${body.error_code}, HTTP ${status})`);
    this.error_code = body.error_code;
    this.error_msg = body.error_msg;
    this.status = status;
    if (body.request_id) this.request_id = body.request_id;
    if (retryAfterS !== undefined) this.retryAfterS = retryAfterS;
  }
}

/** The hub could not be reached, or answered something that is not the API (a proxy's page). */
export class ModelHubConnectionError extends Error {
  override name = 'ModelHubConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `wait()` ran out of time; the job continues on the hub. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
  constructor(readonly job: Job) {
    super(`job ${job.id} is still ${job.status} after the wait limit; it continues on the hub`);
  }
}

/** A webhook delivery whose signature or timestamp does not verify. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

/**
 * The hub's error codes by name, with the HTTP status it answers each with. The hub's
 * /openapi.json lists them (SpecError's error_code) and each answer's codes; a test checks that
 * this table agrees with it, so clients compare `err.error_code` with a name, not a number.
 */
export const ErrorCodes = {
  BAD_JSON: { code: 1001, status: 400 },
  INVALID_INPUT: { code: 1002, status: 400 },
  INVALID_IMAGE: { code: 1003, status: 400 },
  IMAGE_TOO_LARGE: { code: 1004, status: 413 },
  BODY_TOO_LARGE: { code: 1005, status: 413 },
  INVALID_OPTION: { code: 1006, status: 400 },
  UNSUPPORTED_IMAGE_FORMAT: { code: 1007, status: 415 },
  IMAGE_DECODE_TIMEOUT: { code: 1008, status: 422 },
  OUTPUT_TOO_LARGE: { code: 1009, status: 422 },
  UNSUPPORTED_MEDIA_TYPE: { code: 1010, status: 415 },
  UNAUTHORIZED: { code: 1101, status: 401 },
  FORBIDDEN: { code: 1102, status: 403 },
  MODEL_NOT_FOUND: { code: 1201, status: 404 },
  JOB_NOT_FOUND: { code: 1202, status: 404 },
  ROUTE_NOT_FOUND: { code: 1203, status: 404 },
  MODEL_UNAVAILABLE: { code: 1204, status: 503 },
  EXAMPLE_NOT_FOUND: { code: 1205, status: 404 },
  CONFLICT: { code: 1301, status: 409 },
  IDEMPOTENCY_MISMATCH: { code: 1302, status: 422 },
  QUEUE_FULL: { code: 1401, status: 429 },
  TENANT_QUOTA: { code: 1402, status: 429 },
  RATE_LIMITED: { code: 1403, status: 429 },
  STORE_UNAVAILABLE: { code: 1501, status: 503 },
  WAIT_TIMEOUT: { code: 1502, status: 504 },
  BUSY: { code: 1503, status: 503 },
  INFERENCE_FAILED: { code: 2001, status: 500 },
  DEADLINE_EXCEEDED: { code: 2002, status: 504 },
  CANCELED: { code: 2003, status: 409 },
  INTERNAL: { code: 2999, status: 500 },
} as const;

export type ErrorName = keyof typeof ErrorCodes;

/** The HTTP status the hub answers for an error code (500 for a code it does not list). */
export function statusOfErrorCode(code: number): number {
  return Object.values(ErrorCodes).find((e) => e.code === code)?.status ?? 500;
}
