/**
 * Per-tenant quota overrides (MODELHUB_TENANT_LIMITS): a JSON object from tenant name to the
 * limits that tenant gets instead of the defaults, e.g.
 *   {"bigcustomer": {"rate_rps": 200, "max_waiting": 5000, "priority_ceiling": 1}}
 * A field left out keeps its default setting; 0 turns a limit off, as for the defaults.
 */
import { z } from 'zod';
import type { TenancyOptions } from './options/tenancy.js';

const count = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be an integer`)
    .nonnegative(`${what} must be 0 or more`);

const TenantOverride = z.strictObject({
  /** Requests per second (burst 2×); default TENANT_RATE_RPS. */
  rate_rps: count('rate_rps').optional(),
  /** Body bytes per second; default TENANT_RATE_BYTES_PER_S. */
  rate_bytes_per_s: count('rate_bytes_per_s').optional(),
  /** Waiting jobs per model; default TENANT_MAX_WAITING. */
  max_waiting: count('max_waiting').optional(),
  /** Highest priority (1 highest .. 10); default TENANT_PRIORITY_CEILING. */
  priority_ceiling: count('priority_ceiling')
    .min(1, 'priority_ceiling must be between 1 and 10')
    .max(10, 'priority_ceiling must be between 1 and 10')
    .optional(),
  /** Bytes of inputs and results kept per model; default TENANT_MAX_STORED_BYTES. */
  max_stored_bytes: count('max_stored_bytes').optional(),
  /** Batch items in flight per model; default TENANT_MAX_BATCH_ITEMS. */
  max_batch_items: count('max_batch_items').optional(),
});

export type TenantOverrides = Record<string, z.output<typeof TenantOverride>>;

/** Parses MODELHUB_TENANT_LIMITS; throws an Error whose message names the tenant and the field. */
export function parseTenantLimits(text: string): TenantOverrides {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('must be a JSON object of tenant name → limits');
  const out: TenantOverrides = {};
  for (const [tenant, limits] of Object.entries(value)) {
    const parsed = TenantOverride.safeParse(limits);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where =
        issue.code === 'unrecognized_keys'
          ? `unknown field(s) ${issue.keys.join(', ')} (known: ${Object.keys(TenantOverride.shape).join(', ')})`
          : issue.path.length
            ? issue.message
            : `must be an object of limits`;
      throw new Error(`tenant "${tenant}": ${where}`);
    }
    out[tenant] = parsed.data;
  }
  return out;
}

/** One tenant's limits: the tenancy options' fields (documented there), its overrides applied. */
export type TenantLimits = Omit<TenancyOptions, 'overrides'>;

/** The limits `tenant` gets: its overrides over the defaults (an open API's null tenant gets the defaults). */
export function limitsOf(tenancy: TenancyOptions, tenant: string | null): TenantLimits {
  const own =
    (tenant !== null && Object.hasOwn(tenancy.overrides, tenant) ? tenancy.overrides[tenant] : undefined) ?? {};
  return {
    rateRps: own.rate_rps ?? tenancy.rateRps,
    rateBytesPerS: own.rate_bytes_per_s ?? tenancy.rateBytesPerS,
    maxWaiting: own.max_waiting ?? tenancy.maxWaiting,
    priorityCeiling: own.priority_ceiling ?? tenancy.priorityCeiling,
    maxStoredBytes: own.max_stored_bytes ?? tenancy.maxStoredBytes,
    maxBatchItems: own.max_batch_items ?? tenancy.maxBatchItems,
  };
}
