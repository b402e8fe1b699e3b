/** Building blocks of the settings schemas (shared/config.ts and each component's options file). */
import { z } from 'zod';

/** A whole number ≥ 0 with a default. */
export const int = (def: number) => z.coerce.number().int().nonnegative().default(def);

/**
 * A whole number in [min, max], its message naming the range (the path names the setting): the
 * retention, quota, rate and size settings, where 0 or an absurd value breaks the hub at run time
 * (JOB_RETENTION_COUNT=0 made the finish script fail on every job).
 */
export const ranged = (def: number, min: number, max: number, why = '') =>
  z.coerce
    .number()
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be at least ${min}${why}`)
    .max(max, `must be at most ${max}`)
    .default(def);
