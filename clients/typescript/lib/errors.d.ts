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
/** The HTTP status the hub answers for each error code (the README's table). */
export declare function statusOfErrorCode(code: number): number;
