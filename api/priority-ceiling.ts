/** The highest priority a caller may ask for (1 is highest): admin keys 1, a tenant its ceiling (TENANT_PRIORITY_CEILING or its own). */
import type { Request } from 'express';
import { SpecError } from '../shared/errors.js';
import type { TenancyOptions } from '../shared/options/tenancy.js';
import { limitsOf } from '../shared/tenant-limits.js';

/** Refuses (400, INVALID_OPTION) a priority above what the caller's key may use; jobs and batches alike. */
export function checkPriorityCeiling(tenancy: TenancyOptions, req: Request, priority: number | undefined): void {
  if (priority === undefined) return;
  const ceiling = req.admin ? 1 : limitsOf(tenancy, req.tenant).priorityCeiling;
  if (priority < ceiling)
    throw new SpecError(
      'INVALID_OPTION',
      `priority ${priority} is above what this key may use (${ceiling}..10; 1 is highest)`,
    );
}
