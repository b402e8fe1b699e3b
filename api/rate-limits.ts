/**
 * Per-tenant rate limits at the door: token buckets for requests (polling included) and for body
 * bytes (429 + Retry-After), charged before a body is parsed so one tenant cannot take the API's
 * event loop from the others. Buckets live in this API process: with N replicas a tenant gets N
 * times the rate. The parse budget (bytes parsed at once, all tenants) is in parse-budget.ts; the
 * structural scan of a body before JSON.parse in body-parse.ts.
 */
import type { NextFunction, Request, Response } from 'express';
import { SpecError } from '../shared/errors.js';
import { hasBody, meterOf } from './body-meter.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per key: `ratePerS` refill, `burst` capacity. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `cost` tokens; returns 0 when granted, else the seconds until it would be. */
  take(key: string, cost = 1): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerS);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= Math.min(cost, this.burst)) {
      b.tokens -= cost;
      return 0;
    }
    return Math.max(1, Math.ceil((Math.min(cost, this.burst) - b.tokens) / this.ratePerS));
  }

  /** Takes `cost` tokens whatever the balance (bytes already received): the debt delays the next take. */
  debit(key: string, cost: number): void {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerS) - cost;
    b.at = t;
    this.buckets.set(key, b);
  }

  /** Tokens `key` could spend now (a bucket not seen yet is full), without taking any. */
  available(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return this.burst;
    return Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.ratePerS);
  }

  get capacity(): number {
    return this.burst;
  }

  /** Forgets buckets that are full again (bounded memory with many tenants). */
  sweep(): void {
    const t = this.now();
    for (const [k, b] of this.buckets)
      if (b.tokens + ((t - b.at) / 1000) * this.ratePerS >= this.burst) this.buckets.delete(k);
  }
}

export interface TenantRates {
  requestsPerS: number;
  bytesPerS: number;
}

export interface RateLimits extends TenantRates {
  /** Largest body: a single request may always spend up to this many bytes at once. */
  bodyLimit: number;
  /** A tenant's own rates (MODELHUB_TENANT_LIMITS); absent: every tenant gets requestsPerS and bytesPerS. */
  ratesOf?: (tenant: string) => TenantRates;
  /** Clock of the buckets (tests). Default Date.now. */
  now?: () => number;
}

/** One of a tenant's buckets as GET /v1/usage shows it: `per_second` 0 means no limit. */
export interface BucketState {
  per_second: number;
  burst: number;
  available: number;
}

export type TenantRateState = (tenant: string) => { requests: BucketState; bytes: BucketState };

/**
 * Per-tenant request and byte rates (keyed requests only; 0 turns a limit off). The middleware
 * carries `state(tenant)`: the tenant's buckets in this API process, read without taking a token.
 */
export function tenantRateLimit(limits: RateLimits) {
  // One pair of bucket sets per distinct pair of rates (buckets inside are per tenant).
  const sets = new Map<string, { requests: TokenBuckets; bytes: TokenBuckets }>();
  const setFor = (rates: TenantRates) => {
    const key = `${rates.requestsPerS}/${rates.bytesPerS}`;
    let set = sets.get(key);
    if (!set) {
      set = {
        requests: new TokenBuckets(rates.requestsPerS, Math.max(1, rates.requestsPerS * 2), limits.now),
        bytes: new TokenBuckets(rates.bytesPerS, Math.max(rates.bytesPerS * 2, limits.bodyLimit), limits.now),
      };
      sets.set(key, set);
    }
    return set;
  };
  const sweeper = setInterval(() => {
    for (const set of sets.values()) {
      set.requests.sweep();
      set.bytes.sweep();
    }
  }, 60_000);
  sweeper.unref();
  const state: TenantRateState = (tenant) => {
    const rates = limits.ratesOf?.(tenant) ?? limits;
    const { requests, bytes } = setFor(rates);
    const view = (perS: number, buckets: TokenBuckets): BucketState => ({
      per_second: perS,
      burst: perS > 0 ? buckets.capacity : 0,
      available: perS > 0 ? Math.floor(buckets.available(tenant)) : 0,
    });
    return { requests: view(rates.requestsPerS, requests), bytes: view(rates.bytesPerS, bytes) };
  };
  const middleware = (req: Request, _res: Response, next: NextFunction) => {
    if (req.tenant === null) return next();
    const rates = limits.ratesOf?.(req.tenant) ?? limits;
    const { requests, bytes } = setFor(rates);
    if (rates.requestsPerS > 0) {
      const wait = requests.take(req.tenant);
      if (wait)
        return next(
          new SpecError('RATE_LIMITED', `too many requests: the limit is ${rates.requestsPerS} per second`, {
            'Retry-After': String(wait),
          }).withReason('tenant_requests'),
        );
    }
    if (rates.bytesPerS > 0 && hasBody(req)) {
      const meter = meterOf(req);
      // A declared length is charged up front; a chunked body must find the bucket out of debt, and
      // is charged each piece as it is read.
      const wait = bytes.take(req.tenant, meter.declared ?? 0);
      if (wait)
        return next(
          new SpecError('RATE_LIMITED', `too many bytes: the limit is ${rates.bytesPerS} bytes per second`, {
            'Retry-After': String(wait),
          }).withReason('tenant_bytes'),
        );
      const tenant = req.tenant;
      if (meter.declared === null)
        meter.onUndeclared((n) => {
          bytes.debit(tenant, n);
          return null;
        });
    }
    next();
  };
  return Object.assign(middleware, { state });
}
