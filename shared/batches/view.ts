/** The API's batch object and result lines, built from a batch's description and its counts. */
import { itemRequestId, type BatchData } from './payload.js';

/** One line of GET /v1/batches/:id/results. */
export interface ResultLine {
  index: number;
  status: 'succeeded' | 'failed' | 'canceled';
  output?: Record<string, unknown>;
  error?: { success: false; error_code: number; error_msg: string; request_id?: string };
  completed_at: string;
}

/** Result lines for items that never ran: all canceled, or all failed with one error. */
export function unranLines(
  batchId: string,
  first: number,
  count: number,
  status: 'failed' | 'canceled',
  error: { errorCode: number; message: string },
): ResultLine[] {
  const completed_at = new Date().toISOString();
  return Array.from({ length: count }, (_, k) => ({
    index: first + k,
    status,
    error: {
      success: false as const,
      error_code: error.errorCode,
      error_msg: error.message,
      request_id: itemRequestId(batchId, first + k),
    },
    completed_at,
  }));
}

export type BatchStatus = 'queued' | 'running' | 'completed' | 'canceled';

export interface BatchCounts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  canceled: number;
}

export interface BatchView {
  id: string;
  object: 'batch';
  model: string;
  status: BatchStatus;
  counts: BatchCounts;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  canceled_at?: string;
  urls: { get: string; results: string; cancel: string };
}

const iso = (ms: string | number | undefined) => (ms ? new Date(Number(ms)).toISOString() : undefined);

/**
 * The batch object. `counts` is the batch's counts hash: status is canceled once a cancel was
 * asked (items already running still finish: watch the counts), completed once every chunk is
 * done, running once a chunk started, else queued.
 */
export function batchView(data: BatchData, counts: Partial<Record<string, string>>): BatchView {
  const n = (f: string) => Math.max(0, Number(counts[f] ?? 0));
  const running = n('running');
  const succeeded = n('succeeded');
  const failed = n('failed');
  const canceled = n('canceled');
  const finished = n('chunks_done') >= data.chunks;
  const status: BatchStatus = counts.canceled_at
    ? 'canceled'
    : finished
      ? 'completed'
      : counts.started_at
        ? 'running'
        : 'queued';
  const base = `/v1/batches/${data.id}`;
  return {
    id: data.id,
    object: 'batch',
    model: data.model,
    status,
    counts: {
      total: data.total,
      queued: Math.max(0, data.total - running - succeeded - failed - canceled),
      running,
      succeeded,
      failed,
      canceled,
    },
    created_at: iso(data.created_at)!,
    ...(counts.started_at ? { started_at: iso(counts.started_at) } : {}),
    ...(finished && counts.completed_at ? { completed_at: iso(counts.completed_at) } : {}),
    ...(counts.canceled_at ? { canceled_at: iso(counts.canceled_at) } : {}),
    urls: { get: base, results: `${base}/results`, cancel: `${base}/cancel` },
  };
}
