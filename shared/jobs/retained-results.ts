/**
 * What a model keeps in Redis after its jobs finish, and what each tenant holds there.
 *
 * BullMQ bounds a model's finished jobs by age and count (removeOnComplete); a result can be
 * megabytes, so ModelHub also bounds them by bytes (JOB_RETENTION_BYTES): beside the completed
 * set it keeps each retained result's size and owner, and when a job finishes (one script,
 * finish-job.lua, which also drops the job's input) the oldest results past any of the three
 * bounds leave the count; those only the byte bound pushed out are removed here.
 *
 * A tenant's stored bytes per model (its TENANT_MAX_STORED_BYTES quota) are the inputs of its
 * jobs not yet finished, counted at submit, plus its retained results: the finish script swaps
 * one for the other, a cancel or a delete gives them back. Every change is one atomic script
 * in the queue's hash slot, so the counts cannot drift on a crash between two commands.
 */
import type { Config } from '../config.js';
import type { RedisClient } from '../redis/connection.js';
import { jobClaimKey, retainedResultKeys, tenantKeyPrefix, tenantStoredKey } from '../redis/keys.js';
import { scripts } from '../redis/scripts.js';
import { sideKeyTtlS } from './retention.js';

type RetentionConfig = Pick<Config, 'JOB_RETENTION_S' | 'JOB_RETENTION_COUNT' | 'JOB_RETENTION_BYTES'>;

export interface FinishedJob {
  id: string;
  /** BullMQ's key of the job's hash (`worker.toKey(id)`). */
  key: string;
  tenant: string | null;
  /** The job's data without its input (JSON), written in place of the data it was queued with. */
  dataWithoutInput: string;
  /** Input bytes its submit counted (JobData.input_bytes; 0 for jobs queued without). */
  inputBytes: number;
}

/**
 * Drops a finished job's input and counts its result; returns the ids of older jobs the byte bound
 * pushed out, which the caller removes through BullMQ (their results already left the counts).
 */
export async function finishJob(
  redis: RedisClient,
  prefix: string,
  model: string,
  job: FinishedJob,
  config: RetentionConfig,
  now = Date.now(),
): Promise<string[]> {
  const keys = retainedResultKeys(prefix, model);
  return scripts(redis).modelhubFinishJob(
    job.key,
    keys.byTime,
    keys.bytes,
    tenantStoredKey(prefix, model, job.tenant),
    jobClaimKey(prefix, model, job.id),
    job.dataWithoutInput,
    job.inputBytes,
    job.id,
    job.tenant ?? '-',
    now,
    config.JOB_RETENTION_S * 1000,
    config.JOB_RETENTION_COUNT,
    config.JOB_RETENTION_BYTES,
    tenantKeyPrefix(prefix, model),
    sideKeyTtlS(config),
  );
}

/**
 * A job about to be deleted (its hash still there: its result's size is read from it) leaves the
 * counts; returns the bytes released.
 */
export async function forgetRetained(
  redis: RedisClient,
  prefix: string,
  model: string,
  job: { id: string; key: string; tenant: string | null },
  config: Pick<Config, 'JOB_RETENTION_S'>,
): Promise<number> {
  const keys = retainedResultKeys(prefix, model);
  return scripts(redis).modelhubForgetRetained(
    job.key,
    keys.byTime,
    keys.bytes,
    job.id,
    job.tenant ?? '-',
    tenantKeyPrefix(prefix, model),
    sideKeyTtlS(config),
  );
}

/**
 * Bytes a job's input is counted as at submit: its strings (an image's base64, a text) plus a
 * little per other value. Recorded in the job (JobData.input_bytes), so what the finish script
 * gives back is exactly what was counted.
 */
export function inputBytesOf(input: Record<string, unknown>): number {
  let bytes = 2;
  const visit = (value: unknown, depth: number): void => {
    if (typeof value === 'string') bytes += value.length + 3;
    else if (Array.isArray(value) && depth < 4) for (const v of value) visit(v, depth + 1);
    else if (value && typeof value === 'object' && depth < 4)
      for (const [k, v] of Object.entries(value)) {
        bytes += k.length + 3;
        visit(v, depth + 1);
      }
    else bytes += 8;
  };
  for (const [k, v] of Object.entries(input)) {
    bytes += k.length + 3;
    visit(v, 0);
  }
  return bytes;
}
