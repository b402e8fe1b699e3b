/** A coalesced predict call's job view, read from its entry (GET /v1/jobs/{request_id}). */
import { SpecError } from '../errors.js';
import { jobView, stateFromHash, type JobFacts, type JobView } from '../job-view.js';
import type { EntryItemResult, EntryResult } from './entry.js';

/** The item's own result in its entry's result, or null (not there: the entry has not completed). */
export function itemResultOf(result: EntryResult | null | undefined, id: string): EntryItemResult | null {
  return result?.items.find((it) => it.id === id) ?? null;
}

/**
 * The view of item `id` of an entry whose view-relevant fields are `entry` (read by
 * readJobFacts): its status is the entry's, its output and metrics its own.
 */
export function itemView(entry: JobFacts, id: string, state = stateFromHash(entry)): JobView {
  const asEntry = jobView({ ...entry, id, returnvalue: null }, state ?? 'waiting');
  const result = entry.returnvalue as unknown as EntryResult | null | undefined;
  // Queued, running, or the whole entry failed (e.g. it kept killing its workers): as the entry.
  if (asEntry.status !== 'succeeded') return asEntry;
  const own = itemResultOf(result, id);
  if (!own) return { ...asEntry, status: 'failed', output: { ...new SpecError('INTERNAL', 'no result').toBody(id) } };
  if ('error' in own)
    return { ...asEntry, status: 'failed', output: { ...SpecError.fromReason(own.error).toBody(id) } };
  return {
    ...asEntry,
    output: { ...own.output, request_id: id, success: true, error_code: 0 },
    metrics: {
      queue_ms: Math.max(0, (entry.processedOn ?? entry.timestamp) - entry.timestamp),
      inference_ms: own.metrics.inference_ms,
      batch_size: own.metrics.batch_size,
      entry_items: result!.metrics.entry_items,
      ...(result!.metrics.weights_sha256
        ? { weights_sha256: result!.metrics.weights_sha256, weights: result!.metrics.weights }
        : {}),
    },
  };
}
