/**
 * Tenancy: each tenant's (API key's) rates and quotas, the defaults and the per-tenant overrides.
 * Its variables (part of the configuration schema, shared/config.ts), the options type the API
 * takes, and its resolution from a loaded configuration, done once by startApi and passed down.
 * A new tenancy setting: its variable in TENANCY_SETTINGS, its field (documented, with its
 * default) in TenancyOptions and its line in tenancyOptions, all here; then the code that uses it.
 */
import { z } from 'zod';
import type { Config } from '../config.js';
import { ranged } from '../settings.js';
import { limitsOf, parseTenantLimits, type TenantLimits, type TenantOverrides } from '../tenant-limits.js';

/** Byte counts Redis and Node can hold: a stored-bytes quota of a pebibyte is a typo. */
const MAX_BYTES_SETTING = 2 ** 50;

/** Tenancy's variables (each read as MODELHUB_<name>; shared/config.ts envName). */
export const TENANCY_SETTINGS = {
  /** Per tenant (API key), per API process: requests per second (burst 2×) and body bytes per second (burst: 2× or one body). 0 = off. */
  TENANT_RATE_RPS: ranged(50, 0, 1_000_000),
  TENANT_RATE_BYTES_PER_S: ranged(50 * 1024 * 1024, 0, MAX_BYTES_SETTING),
  /** Waiting jobs one tenant may have in one model's queue before 429 (0 = only QUEUE_MAX_WAITING). */
  TENANT_MAX_WAITING: ranged(1_000, 0, 100_000_000),
  /**
   * Bytes one tenant may hold in one model's queue: inputs of its jobs not yet finished plus its
   * retained results. A submit past it is refused (429) until jobs finish, are deleted
   * (DELETE /v1/jobs/{id}) or age out. 0 = no quota.
   */
  TENANT_MAX_STORED_BYTES: ranged(256 * 1024 * 1024, 0, MAX_BYTES_SETTING),
  /**
   * Batch items one tenant may have in flight (staged, not yet finished) in one model's bulk lane:
   * batch items do not count in TENANT_MAX_WAITING (a batch may hold 50,000). Their input bytes
   * count in TENANT_MAX_STORED_BYTES. 0 = no limit.
   */
  TENANT_MAX_BATCH_ITEMS: ranged(100_000, 0, 100_000_000),
  /**
   * Per-tenant overrides of the five TENANT_* limits: JSON {"<tenant>": {"rate_rps", "rate_bytes_per_s",
   * "max_waiting", "priority_ceiling", "max_stored_bytes"}} (any subset). See shared/tenant-limits.ts.
   */
  MODELHUB_TENANT_LIMITS: z
    .string()
    .transform((text, ctx): TenantOverrides => {
      try {
        return parseTenantLimits(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /**
   * Highest priority a tenant's key may ask for (1 is highest, 10 lowest): a request above it is
   * refused (400). Admin keys and an open API may use 1.
   */
  TENANT_PRIORITY_CEILING: z.coerce.number().int().min(1).max(10).default(3),
};

/** The limits every tenant gets, and the tenants that get others (limitsOf). */
export interface TenancyOptions {
  /**
   * Requests per second per tenant, per API process (burst 2×); 0: no limit.
   * @defaultValue 50 (MODELHUB_TENANT_RATE_RPS)
   */
  rateRps: number;
  /**
   * Body bytes per second per tenant, per API process (burst: 2× or one body); 0: no limit.
   * @defaultValue 52428800 (MODELHUB_TENANT_RATE_BYTES_PER_S)
   */
  rateBytesPerS: number;
  /**
   * Waiting jobs per tenant in one model's queue before 429; 0: only the queue's own bound.
   * @defaultValue 1000 (MODELHUB_TENANT_MAX_WAITING)
   */
  maxWaiting: number;
  /**
   * Highest priority a tenant's key may ask for (1 is highest); admin keys and an open API may use 1.
   * @defaultValue 3 (MODELHUB_TENANT_PRIORITY_CEILING)
   */
  priorityCeiling: number;
  /**
   * Bytes per tenant in one model's queue (unfinished inputs and retained results); 0: no quota.
   * @defaultValue 268435456 (MODELHUB_TENANT_MAX_STORED_BYTES)
   */
  maxStoredBytes: number;
  /**
   * Batch items per tenant in flight in one model's bulk lane; 0: no limit.
   * @defaultValue 100000 (MODELHUB_TENANT_MAX_BATCH_ITEMS)
   */
  maxBatchItems: number;
  /**
   * Tenants whose limits differ: tenant → the fields it gets instead (shared/tenant-limits.ts).
   * @defaultValue `{}`: none (MODELHUB_TENANT_LIMITS)
   */
  overrides: TenantOverrides;
}

export function tenancyOptions(config: Config): TenancyOptions {
  return {
    rateRps: config.TENANT_RATE_RPS,
    rateBytesPerS: config.TENANT_RATE_BYTES_PER_S,
    maxWaiting: config.TENANT_MAX_WAITING,
    priorityCeiling: config.TENANT_PRIORITY_CEILING,
    maxStoredBytes: config.TENANT_MAX_STORED_BYTES,
    maxBatchItems: config.TENANT_MAX_BATCH_ITEMS,
    overrides: config.MODELHUB_TENANT_LIMITS ?? {},
  };
}

/**
 * limitsOf, from a loaded configuration: for the API service that still takes the whole Config
 * (api/batch-service.ts); the rest take TenancyOptions.
 */
export function tenantLimits(config: Config, tenant: string | null): TenantLimits {
  return limitsOf(tenancyOptions(config), tenant);
}
