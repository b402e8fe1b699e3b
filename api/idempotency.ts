/**
 * Idempotency-Key: one job per key and tenant within the retention window. A key is claimed
 * with SET NX before the job is added, marked `stored` once it is, and freed when a submission
 * surely stored nothing, so a retry neither meets a ghost nor makes a second job.
 */
import { createHash } from 'node:crypto';
import { SpecError } from '../shared/errors.js';
import type { JobView } from '../shared/job-view.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { idempotencyRecordKey } from '../shared/redis/keys.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** JSON with object keys sorted, so equal requests hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Hash of a request after validation and defaults: key order and spelled-out defaults do not matter. */
export function requestHash(model: string, request: unknown): string {
  return sha256(canonicalJson([model, request]));
}

interface KeyValue {
  job_id: string;
  request_hash: string;
  /** The job was added: a missing job now means it expired, not that it is still coming. */
  stored?: boolean;
}

export class IdempotencyKey {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    tenant: string | null,
    clientKey: string,
    private readonly requestHash: string,
    private readonly ttlS: number,
  ) {
    // The client's key is hashed: it may be long or odd.
    this.key = idempotencyRecordKey(prefix, tenant, sha256(clientKey));
  }

  /** True when this request now owns the key for `jobId`; false when an earlier request does. */
  async claim(jobId: string): Promise<boolean> {
    const value: KeyValue = { job_id: jobId, request_hash: this.requestHash };
    return (await this.redis.set(this.key, JSON.stringify(value), 'EX', this.ttlS, 'NX')) !== null;
  }

  async markStored(jobId: string): Promise<void> {
    const value: KeyValue = { job_id: jobId, request_hash: this.requestHash, stored: true };
    await this.redis.set(this.key, JSON.stringify(value), 'KEEPTTL').catch(() => undefined);
  }

  /**
   * After a failed submission: `stored` says whether its job was stored after all (null: could
   * not tell). Free the key when it surely was not; when unknown, keep it for five minutes only.
   */
  async settleAfterFailure(stored: boolean | null): Promise<void> {
    if (stored === false) await this.redis.del(this.key).catch(() => undefined);
    else if (stored === null) await this.redis.expire(this.key, 300).catch(() => undefined);
  }

  /** Answers a repeated request with the first one's job (read by `read`, JOB_NOT_FOUND while absent). */
  async replay<V = JobView>(read: (id: string) => Promise<V>): Promise<V> {
    const raw = await this.redis.get(this.key);
    const prior = raw ? (JSON.parse(raw) as KeyValue) : null;
    if (!prior) throw new SpecError('CONFLICT', 'a request with this Idempotency-Key is being processed; retry');
    if (prior.request_hash !== this.requestHash) {
      throw new SpecError('IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used with a different request body');
    }
    // The first request may still be between claiming the key and adding the job.
    for (let i = 0; i < 20; i++) {
      try {
        return await read(prior.job_id);
      } catch (err) {
        if (!(err instanceof SpecError && err.kind === 'JOB_NOT_FOUND')) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (prior.stored)
      throw new SpecError(
        'CONFLICT',
        `the job of this Idempotency-Key (${prior.job_id}) no longer exists; use a new key`,
      );
    throw new SpecError('CONFLICT', 'a request with this Idempotency-Key is being processed; retry');
  }
}
