/** A Reconciler over one model, with no job queue or webhook queue behind it (tests of its records). */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Reconciler, type ReconcilerOptions } from '../../api/reconciler.js';
import type { JobData, JobResult } from '../../shared/jobs/payload.js';
import { createLogger } from '../../shared/logger.js';
import type { WebhookJobData } from '../../shared/webhooks/events.js';

/** `retentionS`: the accounting keys' TTL and the results' retention age (default 60 s). */
export function modelReconciler(
  redis: Redis,
  prefix: string,
  model: string,
  options: Partial<Omit<ReconcilerOptions, 'prefix' | 'accounting'>> & { retentionS?: number } = {},
): Reconciler {
  const { retentionS = 60, ...rest } = options;
  return new Reconciler(
    redis,
    new Map([[model, {} as Queue<JobData, JobResult>]]),
    {} as Queue<WebhookJobData>,
    createLogger('test', { level: 'silent' }),
    {
      prefix,
      accounting: {
        ttlS: retentionS,
        retention: { JOB_RETENTION_S: retentionS, JOB_RETENTION_COUNT: 10, JOB_RETENTION_BYTES: 0 },
      },
      periodMs: 30_000,
      ...rest,
    },
  );
}
