/**
 * Spec errors: every failure a client sees is `{ success: false, error_code, error_msg, request_id }`.
 * Each code below is stable and documented in docs/api.md ("Errors"); `httpStatus` is what the API
 * answers. /openapi.json names every code, and lists per answer the codes it carries.
 */
export const ErrorCodes = {
  BAD_JSON: { code: 1001, status: 400 },
  INVALID_INPUT: { code: 1002, status: 400 },
  INVALID_IMAGE: { code: 1003, status: 400 },
  IMAGE_TOO_LARGE: { code: 1004, status: 413 },
  BODY_TOO_LARGE: { code: 1005, status: 413 },
  INVALID_OPTION: { code: 1006, status: 400 },
  /** An image format outside the allow-list (SVG, HEIF, BMP...). */
  UNSUPPORTED_IMAGE_FORMAT: { code: 1007, status: 415 },
  /** Decoding or resizing one image took longer than IMAGE_DECODE_TIMEOUT_S. */
  IMAGE_DECODE_TIMEOUT: { code: 1008, status: 422 },
  /** The result in the requested encoding would exceed the model's result limit (use rle/png). */
  OUTPUT_TOO_LARGE: { code: 1009, status: 422 },
  /** A body sent compressed (Content-Encoding) or in a charset other than UTF-8. */
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
  /** This tenant's own quota (waiting jobs per model) is used up. */
  TENANT_QUOTA: { code: 1402, status: 429 },
  /** This tenant sends requests or bytes faster than its rate limit. */
  RATE_LIMITED: { code: 1403, status: 429 },
  /** The API is parsing as many request bytes as it allows at once; retry shortly. */
  BUSY: { code: 1503, status: 503 },
  /** Redis (the job store) did not answer. */
  STORE_UNAVAILABLE: { code: 1501, status: 503 },
  WAIT_TIMEOUT: { code: 1502, status: 504 },
  INFERENCE_FAILED: { code: 2001, status: 500 },
  DEADLINE_EXCEEDED: { code: 2002, status: 504 },
  CANCELED: { code: 2003, status: 409 },
  INTERNAL: { code: 2999, status: 500 },
} as const;

export type ErrorKind = keyof typeof ErrorCodes;

export interface SpecErrorBody {
  success: false;
  error_code: number;
  error_msg: string;
  request_id?: string;
}

export class SpecError extends Error {
  override name = 'SpecError';
  readonly errorCode: number;
  readonly httpStatus: number;
  /**
   * Why, in a word for operators: the `reason` label of modelhub_jobs_rejected_total. The kind
   * in lower case unless the thrower says more (`withReason`), where one kind has several causes.
   * (Unrelated to BullMQ's failedReason, which toReason/fromReason carry.)
   */
  reason: string;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly headers: Record<string, string> = {},
    /** The job this error is about, when one was already created. */
    readonly requestId?: string,
  ) {
    super(message);
    this.errorCode = ErrorCodes[kind].code;
    this.httpStatus = ErrorCodes[kind].status;
    this.reason = kind.toLowerCase();
  }

  /** Names the cause finer than the kind (e.g. TENANT_QUOTA: `tenant_waiting` or `tenant_stored_bytes`). */
  withReason(reason: string): this {
    this.reason = reason;
    return this;
  }

  toBody(requestId = this.requestId): SpecErrorBody {
    return {
      success: false,
      error_code: this.errorCode,
      error_msg: this.message,
      ...(requestId ? { request_id: requestId } : {}),
    };
  }

  /** Serialized form carried through BullMQ's failedReason, so the API can rebuild the spec error. */
  toReason(): string {
    return JSON.stringify({ kind: this.kind, error_msg: this.message });
  }

  static statusOfCode(code: number): number {
    return Object.values(ErrorCodes).find((e) => e.code === code)?.status ?? 500;
  }

  static fromReason(reason: string | undefined): SpecError {
    if (reason) {
      try {
        const parsed = JSON.parse(reason) as { kind?: string; error_msg?: string };
        if (parsed.kind && parsed.kind in ErrorCodes && typeof parsed.error_msg === 'string') {
          return new SpecError(parsed.kind as ErrorKind, parsed.error_msg);
        }
      } catch {
        // not one of ours: a crash, a stalled job, a timeout raised by BullMQ itself
      }
    }
    return new SpecError('INFERENCE_FAILED', reason || 'job failed');
  }
}

/**
 * Normalizes anything thrown into a SpecError. Unknown errors become INTERNAL with a generic
 * message: their text (stacks, Redis internals) is for the log, not the client.
 */
export function asSpecError(err: unknown): SpecError {
  if (err instanceof SpecError) return err;
  return new SpecError('INTERNAL', 'internal error');
}

const RETRIABLE_KINDS: ReadonlySet<ErrorKind> = new Set(['INFERENCE_FAILED', 'INTERNAL']);

/**
 * Whether another attempt may succeed: the model failed (INFERENCE_FAILED) or something of ours
 * did (INTERNAL, and anything thrown that is not a SpecError). Any other error is the input's or
 * the request's and final: the same input fails the same way again.
 */
export function isRetriable(err: unknown): boolean {
  return RETRIABLE_KINDS.has(asSpecError(err).kind);
}

/**
 * A job's deadline passed before it ran: the worker's failure and the view that predicts it (a
 * job still queued past its deadline) give the same error.
 */
export function deadlinePassedError(): SpecError {
  return new SpecError('DEADLINE_EXCEEDED', "the job's deadline (timeout_s) passed before it could run");
}
