/**
 * The one wrapper the API's services (jobs, predict, batches, usage) put around their Redis-backed
 * steps: a Redis failure becomes a 503 spec error rather than a hang or a 500. The client gets a
 * generic message; Redis's own (which can name scripts, keys, memory state) goes to the log only.
 */
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

/** Runs a Redis-backed step: a spec error passes through, any other failure becomes STORE_UNAVAILABLE (503). */
export type StoreCall = <T>(step: () => Promise<T>) => Promise<T>;

export function storeCall(log: Logger): StoreCall {
  return async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (err) {
      if (err instanceof SpecError) throw err;
      log.warn({ err: (err as Error).message }, 'job store call failed');
      throw new SpecError('STORE_UNAVAILABLE', 'the job store is unavailable; try again shortly', {
        'Retry-After': '2',
      });
    }
  };
}
