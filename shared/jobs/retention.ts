/** How long jobs and the keys kept beside them live, and the BullMQ options every job gets. */
import type { JobsOptions } from 'bullmq';
import type { Config } from '../config.js';

type RetentionConfig = Pick<Config, 'JOB_RETENTION_S'>;

/**
 * A job's side keys (its index entry, run/cancel claim, webhook delivery record) outlive the job
 * by this much, so a job is never found without them while it is still kept.
 */
const SIDE_KEY_GRACE_S = 3600;

/** TTL of a job's side keys, seconds. */
export function sideKeyTtlS(config: RetentionConfig): number {
  return config.JOB_RETENTION_S + SIDE_KEY_GRACE_S;
}

export function defaultJobOptions(
  config: Pick<Config, 'JOB_RETENTION_S' | 'JOB_RETENTION_COUNT' | 'JOB_ATTEMPTS'>,
): JobsOptions {
  return {
    attempts: Math.max(1, config.JOB_ATTEMPTS),
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: config.JOB_RETENTION_S, count: config.JOB_RETENTION_COUNT },
    removeOnFail: { age: config.JOB_RETENTION_S, count: config.JOB_RETENTION_COUNT },
  };
}

/**
 * Events BullMQ keeps in a model's predict lane's event stream (its default is 10,000). The
 * lane's calls are answered by finish notices (shared/jobs/finish-notices.ts); the stream serves
 * only `GET` with `Prefer: wait` on a coalesced call, which listens for new events and, had it
 * missed one, answers at its wait's end with the call's state. A completed entry's event carries
 * the entry's result (about 4.7 KB for 16 text-direction calls), so 10,000 held about 47 MB per model.
 */
export const PREDICT_LANE_EVENTS_MAX_LEN = 1000;

/** Longest timeout_s a request may ask for. */
const LONGEST_DEADLINE_S = 7 * 24 * 3600;

/** TTL of a batch's keys while it may still run (retention plus the longest deadline), seconds. */
export function batchLiveTtlS(config: RetentionConfig): number {
  return config.JOB_RETENTION_S + LONGEST_DEADLINE_S;
}
