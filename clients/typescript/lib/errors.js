/**
 * A spec error answered by the hub (`success: false`), or the spec error of a job that failed or
 * was canceled. `error_code` and `error_msg` are the hub's; `status` is the HTTP status.
 */
export class ModelHubError extends Error {
    name = 'ModelHubError';
    error_code;
    error_msg;
    /** HTTP status of the answer (for a failed job: the status the hub gives its error code). */
    status;
    /** The job the error is about, when there is one. */
    request_id;
    /** Seconds to wait before retrying, from Retry-After (429). */
    retryAfterS;
    constructor(body, status, retryAfterS) {
        super(`${body.error_msg} (error_code ${body.error_code}, HTTP ${status})`);
        this.error_code = body.error_code;
        this.error_msg = body.error_msg;
        this.status = status;
        if (body.request_id)
            this.request_id = body.request_id;
        if (retryAfterS !== undefined)
            this.retryAfterS = retryAfterS;
    }
}
/** The hub could not be reached, or answered something that is not the API (a proxy's page). */
export class ModelHubConnectionError extends Error {
    name = 'ModelHubConnectionError';
    constructor(message, options) {
        super(message, options);
    }
}
/** `wait()` ran out of time; the job continues on the hub. */
export class WaitTimeoutError extends Error {
    job;
    name = 'WaitTimeoutError';
    constructor(job) {
        super(`job ${job.id} is still ${job.status} after the wait limit; it continues on the hub`);
        this.job = job;
    }
}
/** A webhook delivery whose signature or timestamp does not verify. */
export class WebhookVerificationError extends Error {
    name = 'WebhookVerificationError';
}
/** The HTTP status the hub answers for each error code (the README's table). */
export function statusOfErrorCode(code) {
    if (code === 1101)
        return 401;
    if (code === 1102)
        return 403;
    if (code === 1004 || code === 1005)
        return 413;
    if (code >= 1001 && code < 1100)
        return 400;
    if (code === 1204 || code === 1501)
        return 503;
    if (code >= 1201 && code < 1300)
        return 404;
    if (code === 1301 || code === 2003)
        return 409;
    if (code === 1302)
        return 422;
    if (code === 1401)
        return 429;
    if (code === 1502 || code === 2002)
        return 504;
    return 500;
}
