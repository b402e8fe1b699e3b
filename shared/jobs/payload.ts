/**
 * What the API enqueues (JobData) and what a worker returns (JobResult). The payload is
 * versioned: a release that changes its shape raises JOB_PAYLOAD_VERSION and teaches
 * `readJobData` to read every earlier version, so jobs queued before an upgrade still run.
 */
/**
 * 2: `v` added (0.1.0 wrote no version: its jobs read as version 1; their fields are the same).
 */
export const JOB_PAYLOAD_VERSION = 2;

export type WebhookEvent = 'start' | 'completed';

export interface JobData {
  /** Payload version; absent on jobs queued by 0.1.0 (version 1). */
  v?: number;
  model: string;
  /** The validated spec input. */
  input: Record<string, unknown>;
  tenant: string | null;
  /** Epoch ms; a job still queued past it is never run, a running one past it is failed. */
  deadline_at?: number;
  webhook?: { url: string; events: WebhookEvent[] };
  /**
   * The OpenTelemetry trace the job was submitted in (tracing on), shown on its view. Optional and
   * only read for the view: a release that does not know it runs the job the same (no version bump).
   */
  trace_id?: string;
  /**
   * The API instance waiting for this job (predict, `Prefer: wait` on submit): the worker sends
   * it a finish notice (shared/jobs/finish-notices.ts). Optional: a release that does not know it
   * sends none, and the waiter reads the job back (no version bump).
   */
  reply_to?: string;
  /** Set once the job finished: its input was dropped from Redis (`input` is then {}). */
  input_dropped?: boolean;
  /**
   * Written by releases before accounting records (the count now lives in the job's record);
   * still read by their workers in a mixed fleet, so jobs keep no other meaning for it.
   */
  input_bytes?: number;
}

/** What a worker returns for a finished job. */
export interface JobResult {
  output: Record<string, unknown>;
  metrics: {
    inference_ms: number;
    preprocess_ms: number;
    batch_size: number;
    device: string;
    worker: string;
    /** The weights file that answered (absent from workers of earlier releases). */
    weights_sha256?: string;
    weights?: 'verified' | 'unverified' | 'test';
  };
}

/** A payload written by a newer release than this one: left for a worker that reads it. */
export class UnknownPayloadVersionError extends Error {
  override name = 'UnknownPayloadVersionError';
}

/** A job's payload in the current shape, whichever release queued it. */
export function readJobData(raw: JobData): JobData & { v: typeof JOB_PAYLOAD_VERSION } {
  const version = raw.v ?? 1;
  if (version > JOB_PAYLOAD_VERSION) {
    throw new UnknownPayloadVersionError(
      `job payload version ${version} is newer than this release reads (${JOB_PAYLOAD_VERSION}); upgrade this worker`,
    );
  }
  // Version 1 → 2: only the version field is new.
  return { ...raw, v: JOB_PAYLOAD_VERSION };
}
