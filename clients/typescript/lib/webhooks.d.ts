import type { AnyOutput, Job } from './types.js';
export type HeaderBag = Headers | Record<string, string | string[] | undefined>;
export interface VerifyOptions {
    /** Largest accepted distance between webhook-timestamp and now, seconds (default 300). */
    toleranceS?: number;
    /** The current time (for tests). */
    now?: Date;
}
/** Computes "v1,<signature>" for a delivery: what the hub sends in webhook-signature. */
export declare function signWebhook(secret: string, id: string, timestamp: number, body: string | Uint8Array): Promise<string>;
/**
 * Checks a delivery and returns the job it carries. Pass the raw body exactly as received (not
 * re-serialized JSON) and the request headers. Throws WebhookVerificationError when a header is
 * missing, the timestamp is outside the tolerance, or no signature matches.
 */
export declare function verifyWebhook<O = AnyOutput>(secret: string, rawBody: string | Uint8Array, headers: HeaderBag, options?: VerifyOptions): Promise<Job<O>>;
