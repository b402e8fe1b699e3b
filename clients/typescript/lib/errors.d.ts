/** Errors the SDK throws: the hub's spec errors, unreachable hubs, waits that ran out, bad webhooks. */
import type { Job, SpecErrorBody } from './types.js';
/**
 * A spec error answered by the hub (`success: false`), or the spec error of a job that failed or
 * was canceled. `error_code` and `error_msg` are the hub's; `status` is the HTTP status.
 */
export declare class ModelHubError extends Error {
    name: string;
    readonly error_code: number;
    readonly error_msg: string;
    /** HTTP status of the answer (for a failed job: the status the hub gives its error code). */
    readonly status: number;
    /** The job the error is about, when there is one. */
    readonly request_id?: string;
    /** Seconds to wait before retrying, from Retry-After (429). */
    readonly retryAfterS?: number;
    constructor(body: SpecErrorBody, status: number, retryAfterS?: number);
}
/** The hub could not be reached, or answered something that is not the API (a proxy's page). */
export declare class ModelHubConnectionError extends Error {
    name: string;
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** `wait()` ran out of time; the job continues on the hub. */
export declare class WaitTimeoutError extends Error {
    readonly job: Job;
    name: string;
    constructor(job: Job);
}
/** A webhook delivery whose signature or timestamp does not verify. */
export declare class WebhookVerificationError extends Error {
    name: string;
}
/**
 * The hub's error codes by name, with the HTTP status it answers each with. The hub's
 * /openapi.json lists them (SpecError's error_code) and each answer's codes; a test checks that
 * this table agrees with it, so clients compare `err.error_code` with a name, not a number.
 */
export declare const ErrorCodes: {
    readonly BAD_JSON: {
        readonly code: 1001;
        readonly status: 400;
    };
    readonly INVALID_INPUT: {
        readonly code: 1002;
        readonly status: 400;
    };
    readonly INVALID_IMAGE: {
        readonly code: 1003;
        readonly status: 400;
    };
    readonly IMAGE_TOO_LARGE: {
        readonly code: 1004;
        readonly status: 413;
    };
    readonly BODY_TOO_LARGE: {
        readonly code: 1005;
        readonly status: 413;
    };
    readonly INVALID_OPTION: {
        readonly code: 1006;
        readonly status: 400;
    };
    readonly UNSUPPORTED_IMAGE_FORMAT: {
        readonly code: 1007;
        readonly status: 415;
    };
    readonly IMAGE_DECODE_TIMEOUT: {
        readonly code: 1008;
        readonly status: 422;
    };
    readonly OUTPUT_TOO_LARGE: {
        readonly code: 1009;
        readonly status: 422;
    };
    readonly UNSUPPORTED_MEDIA_TYPE: {
        readonly code: 1010;
        readonly status: 415;
    };
    readonly UNAUTHORIZED: {
        readonly code: 1101;
        readonly status: 401;
    };
    readonly FORBIDDEN: {
        readonly code: 1102;
        readonly status: 403;
    };
    readonly MODEL_NOT_FOUND: {
        readonly code: 1201;
        readonly status: 404;
    };
    readonly JOB_NOT_FOUND: {
        readonly code: 1202;
        readonly status: 404;
    };
    readonly ROUTE_NOT_FOUND: {
        readonly code: 1203;
        readonly status: 404;
    };
    readonly MODEL_UNAVAILABLE: {
        readonly code: 1204;
        readonly status: 503;
    };
    readonly EXAMPLE_NOT_FOUND: {
        readonly code: 1205;
        readonly status: 404;
    };
    readonly CONFLICT: {
        readonly code: 1301;
        readonly status: 409;
    };
    readonly IDEMPOTENCY_MISMATCH: {
        readonly code: 1302;
        readonly status: 422;
    };
    readonly QUEUE_FULL: {
        readonly code: 1401;
        readonly status: 429;
    };
    readonly TENANT_QUOTA: {
        readonly code: 1402;
        readonly status: 429;
    };
    readonly RATE_LIMITED: {
        readonly code: 1403;
        readonly status: 429;
    };
    readonly STORE_UNAVAILABLE: {
        readonly code: 1501;
        readonly status: 503;
    };
    readonly WAIT_TIMEOUT: {
        readonly code: 1502;
        readonly status: 504;
    };
    readonly BUSY: {
        readonly code: 1503;
        readonly status: 503;
    };
    readonly INFERENCE_FAILED: {
        readonly code: 2001;
        readonly status: 500;
    };
    readonly DEADLINE_EXCEEDED: {
        readonly code: 2002;
        readonly status: 504;
    };
    readonly CANCELED: {
        readonly code: 2003;
        readonly status: 409;
    };
    readonly INTERNAL: {
        readonly code: 2999;
        readonly status: 500;
    };
};
export type ErrorName = keyof typeof ErrorCodes;
/** The HTTP status the hub answers for an error code (500 for a code it does not list). */
export declare function statusOfErrorCode(code: number): number;
