/** The API's job object (docs/api.md) built from a BullMQ job and its state. */
import type { JobState, Queue } from 'bullmq';
import { SpecError, deadlinePassedError } from './errors.js';
import type { JobData, JobResult } from './jobs/payload.js';
import type { RedisClient } from './redis/connection.js';
import { readJobHash } from './redis/bullmq-internals.js';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export interface JobView {
  id: string;
  model: string;
  status: JobStatus;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  output?: Record<string, unknown>;
  metrics?: {
    queue_ms: number;
    inference_ms: number;
    batch_size: number;
    /** How many predict calls shared this one's queue entry (coalesced predicts only). */
    entry_items?: number;
    /** The weights file that answered, and whether its digest is a recorded one (verified), not, or a test stand-in. */
    weights_sha256?: string;
    weights?: 'verified' | 'unverified' | 'test';
  };
  webhook?: { attempts: number; last_status: string | null; delivered_at: string | null };
  urls: { get: string; cancel: string };
  /** The job's OpenTelemetry trace id (32 hex digits), when tracing was on when it was submitted. */
  trace_id?: string;
}

/**
 * What a view is built from: a BullMQ job, or just the fields of its hash a view needs (see
 * readJobFacts) with the model and deadline known from elsewhere.
 */
export interface JobFacts {
  id?: string;
  data: Pick<JobData, 'model' | 'deadline_at' | 'trace_id'>;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  returnvalue?: JobResult | null;
  failedReason?: string;
  attemptsMade: number;
  stalledCounter: number;
}

export function statusOf(state: JobState | 'unknown', job: JobFacts): JobStatus {
  const pastDeadline = job.data.deadline_at !== undefined && Date.now() > job.data.deadline_at;
  switch (state) {
    case 'active':
      // Picked up after its deadline: the worker fails it on pick-up (its start is at or after
      // processedOn), and it already read as failed while it waited, so it never reads running.
      return job.processedOn !== undefined &&
        job.data.deadline_at !== undefined &&
        job.processedOn > job.data.deadline_at
        ? 'failed'
        : 'running';
    case 'completed':
      return 'succeeded';
    case 'failed':
      // A job canceled after a worker fetched it is failed by that worker, unrun, as CANCELED.
      return SpecError.fromReason(job.failedReason).kind === 'CANCELED' ? 'canceled' : 'failed';
    default:
      // A queued job past its deadline will never run (the worker fails it on pick-up).
      return pastDeadline ? 'failed' : 'queued';
  }
}

const urlsOf = (id: string) => ({ get: `/v1/jobs/${id}`, cancel: `/v1/jobs/${id}/cancel` });

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

export function jobView(job: JobFacts, state: JobState | 'unknown'): JobView {
  const id = job.id!;
  const status = statusOf(state, job);
  const view: JobView = {
    id,
    model: job.data.model,
    status,
    created_at: iso(job.timestamp)!,
    ...(job.processedOn ? { started_at: iso(job.processedOn) } : {}),
    ...(job.finishedOn && (status === 'succeeded' || status === 'failed' || status === 'canceled')
      ? { completed_at: iso(job.finishedOn) }
      : {}),
    urls: urlsOf(id),
    ...(job.data.trace_id ? { trace_id: job.data.trace_id } : {}),
  };
  if (status === 'succeeded' && job.returnvalue) {
    view.output = successOutput(id, job.returnvalue);
    view.metrics = {
      queue_ms: Math.max(0, (job.processedOn ?? job.timestamp) - job.timestamp),
      inference_ms: job.returnvalue.metrics.inference_ms,
      batch_size: job.returnvalue.metrics.batch_size,
      ...(job.returnvalue.metrics.weights_sha256
        ? { weights_sha256: job.returnvalue.metrics.weights_sha256, weights: job.returnvalue.metrics.weights }
        : {}),
    };
  } else if (status === 'failed' && state !== 'failed') {
    view.output = {
      ...deadlinePassedError().toBody(id),
    };
  } else if (status === 'failed' || status === 'canceled') {
    view.output = { ...SpecError.fromReason(job.failedReason).toBody(id) };
  }
  return view;
}

const successOutput = (id: string, result: JobResult) => ({
  ...result.output,
  request_id: id,
  success: true,
  error_code: 0,
});

/** A submitted job's view once it completed, from its completion event alone (predict: no timestamps). */
export function completedView(submitted: JobView, result: JobResult): JobView {
  return { ...submitted, status: 'succeeded', output: successOutput(submitted.id, result) };
}

/** A submitted job's view once it failed for good, from its failure event alone (predict). */
export function failedView(submitted: JobView, failedReason: string): JobView {
  const error = SpecError.fromReason(failedReason);
  return {
    ...submitted,
    status: error.kind === 'CANCELED' ? 'canceled' : 'failed',
    output: { ...error.toBody(submitted.id) },
  };
}

/** `view` with the job's trace id, when it has one. */
export function withTraceId(view: JobView, traceId: string | undefined): JobView {
  return traceId ? { ...view, trace_id: traceId } : view;
}

/** A job removed from its queue unrun, from the tombstone the job index keeps: how it ended, and when. */
function unrunView(id: string, model: string, createdAt: number, endedAt: number, error: SpecError): JobView {
  return {
    id,
    model,
    status: error.kind === 'CANCELED' ? 'canceled' : 'failed',
    created_at: iso(createdAt)!,
    completed_at: iso(endedAt),
    output: { ...error.toBody(id) },
    urls: urlsOf(id),
  };
}

/** A canceled job: removed from its queue before it ran. */
export function canceledView(id: string, model: string, createdAt: number, canceledAt: number): JobView {
  return unrunView(id, model, createdAt, canceledAt, new SpecError('CANCELED', 'the job was canceled before it ran'));
}

/**
 * A job a cancel found queued past its deadline (it had failed: it reads as it did while it
 * waited, with the deadline error), once removed from its queue.
 */
export function expiredView(id: string, model: string, createdAt: number, expiredAt: number): JobView {
  return unrunView(id, model, createdAt, expiredAt, deadlinePassedError());
}

/** What a job's view needs besides its hash: known from the job index, so `data` (its input) is never read. */
export interface KnownJob {
  model: string;
  deadline_at?: number;
  trace_id?: string;
}

/** The job's view-relevant fields (one HMGET on `redis`, the connection reads go through), or null when the job is gone. */
export async function readJobFacts(
  redis: RedisClient,
  queue: Queue<JobData, JobResult>,
  id: string,
  known: KnownJob,
): Promise<JobFacts | null> {
  const hash = await readJobHash(redis, queue.toKey(id));
  if (!hash) return null;
  return {
    ...hash,
    id,
    data: {
      model: known.model,
      ...(known.deadline_at !== undefined ? { deadline_at: known.deadline_at } : {}),
      ...(known.trace_id ? { trace_id: known.trace_id } : {}),
    },
    returnvalue: hash.returnvalue ? (JSON.parse(hash.returnvalue) as JobResult) : null,
  };
}

/**
 * Reads a job's view from its queue, or null when the job is gone. One read of the job's hash
 * settles most jobs: BullMQ writes it atomically, so a finish time with a result means
 * completed, one without a result failed, no start time queued, and a start on the first
 * attempt (never retried, never recovered from a dead worker) running. Otherwise (a job that
 * may be waiting again) its state is asked first and the job read after it: a job read first
 * could say "completed" without the result its completion wrote meanwhile.
 * With `known` (model and deadline from the job index) only the fields a view needs are read;
 * without it, the whole job.
 */
export async function readJobView(
  queue: Queue<JobData, JobResult>,
  id: string,
  known?: KnownJob & { redis: RedisClient },
): Promise<JobView | null> {
  const read = (): Promise<JobFacts | null | undefined> =>
    known ? readJobFacts(known.redis, queue, id, known) : queue.getJob(id);
  const job = await read();
  if (!job) return null;
  const state = stateFromHash(job);
  if (state) return jobView(job, state);
  const asked = await queue.getJobState(id);
  const again = await read();
  return again ? jobView(again, asked) : null;
}

export function stateFromHash(
  job: Pick<JobFacts, 'finishedOn' | 'processedOn' | 'returnvalue' | 'attemptsMade' | 'stalledCounter'>,
): JobState | null {
  if (job.finishedOn) return job.returnvalue !== null && job.returnvalue !== undefined ? 'completed' : 'failed';
  if (!job.processedOn) return 'waiting';
  if (job.attemptsMade === 0 && !job.stalledCounter) return 'active';
  return null;
}
