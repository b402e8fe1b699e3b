/**
 * Canceling a queued job and deleting a finished one, each settled against the workers by the
 * atomic run/cancel claim (shared/jobs/accounting.ts), so a job is never both canceled and run.
 */
import { SpecError } from '../../shared/errors.js';
import type { JobAccounting } from '../../shared/jobs/accounting.js';
import { canceledView, expiredView, type JobView } from '../../shared/job-view.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { jobIndexKey, webhookStatusKey } from '../../shared/redis/keys.js';
import { enqueueWebhookEvent } from '../../shared/webhooks/events.js';
import type { StoreCall } from '../store-call.js';
import type { JobIndex, JobIndexEntry } from './job-index.js';
import type { JobQueues } from './job-queues.js';
import type { JobReads } from './job-reads.js';

/** Points where a test forces an interleaving with a worker (never set in production). */
export interface JobServiceHooks {
  /** Between a cancel's read of the job's state and its claim. */
  beforeCancelClaim?: (jobId: string) => Promise<void>;
}

export interface JobRemovalParts {
  queues: JobQueues;
  index: JobIndex;
  reads: JobReads;
  accounting: JobAccounting;
  store: StoreCall;
  /** The submit connection: side keys are deleted through it. */
  redis: RedisClient;
  /** Key prefix of the hub's keys (MODELHUB_PREFIX). */
  prefix: string;
  log: Logger;
  hooks: JobServiceHooks;
}

export class JobRemoval {
  constructor(private readonly parts: JobRemovalParts) {}

  /**
   * Cancels a queued job: it never runs. A running job is left to finish and a finished one
   * is left as it is (both 409); canceling twice answers the canceled job again. A queued job
   * whose deadline passed has failed already (it reads failed, error 2002, since the deadline):
   * the cancel answers 409 like for any finished job and the job keeps reading failed, but it is
   * claimed (never to run), removed and its quota given back, as it would otherwise sit counted in
   * its tenant's waiting jobs and stored bytes for ever where no worker serves its model.
   */
  async cancel(id: string, tenant: string | null): Promise<JobView> {
    const { queues, index, accounting, store, log, hooks } = this.parts;
    return store(async () => {
      const entry = await index.read(id, tenant);
      if (entry.canceled_at) return canceledView(id, entry.model, entry.created_at, entry.canceled_at);
      if (entry.expired_at) throw alreadyExpired(id);
      // A predict call answers its caller within its wait: nothing is left to cancel for anyone else.
      if (entry.entry) throw new SpecError('CONFLICT', `"${id}" is a predict call; it cannot be canceled`);
      const job = await queues.queue(entry.model).getJob(id);
      if (!job) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      const state = await job.getState();
      if (state === 'completed' || state === 'failed')
        throw new SpecError('CONFLICT', `job "${id}" has already finished`);
      // Settled in one atomic script against a worker starting, finishing or holding the job:
      // the state read above may already be stale.
      // Queued past its deadline, it has failed (its readers saw failed): its claim says so, so a
      // worker that fetched it meanwhile fails it with the deadline's error, not as canceled.
      const deadline = entry.deadline_at ?? job.data.deadline_at;
      const expiredNow = deadline !== undefined && Date.now() > deadline;
      await hooks.beforeCancelClaim?.(id);
      const claim = await accounting.claimForCancel(entry.model, id, expiredNow ? 'expired' : 'canceled');
      if (claim === 'running') throw new SpecError('CONFLICT', `job "${id}" is running; it will finish`);
      if (claim === 'finished') throw new SpecError('CONFLICT', `job "${id}" has already finished`);
      if (claim === 'gone') throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      // The claim says how the job ended: canceled, or failed by its deadline (409 below).
      const endedAt = await index.markEnded(id, entry, claim);
      const view = (claim === 'expired' ? expiredView : canceledView)(id, entry.model, entry.created_at, endedAt);
      try {
        await job.remove();
      } catch (err) {
        // Locked by a worker that lost the claim: it fails the job unrun, as its claim says.
        log.debug({ err: (err as Error).message, jobId: id }, 'ended job not removed; its worker will drop it');
      }
      await enqueueWebhookEvent(
        queues.webhooks,
        { id, model: entry.model, webhook: job.data.webhook },
        'completed',
        view,
      );
      if (claim === 'expired') throw alreadyExpired(id);
      return view;
    });
  }

  /**
   * Deletes a finished job (its input, output and side keys) for its tenant; afterwards it reads
   * as not found. A queued or running job is not deleted (409: cancel it first), except a queued
   * one whose deadline passed: it has failed already, so it is claimed as expired (never to run)
   * and deleted.
   */
  async remove(id: string, tenant: string | null): Promise<{ id: string; deleted: true }> {
    const { queues, index, accounting, store, redis, prefix } = this.parts;
    return store(async () => {
      const entry = await index.read(id, tenant);
      if (entry.entry) return this.removeItem(entry, id);
      const queue = queues.queue(entry.model);
      const state = await queue.getJobState(id);
      if (
        state !== 'completed' &&
        state !== 'failed' &&
        state !== 'unknown' &&
        !entry.canceled_at &&
        !entry.expired_at
      ) {
        const deadline = entry.deadline_at ?? (await queue.getJob(id))?.data.deadline_at;
        if (deadline === undefined || Date.now() <= deadline)
          throw new SpecError('CONFLICT', `job "${id}" has not finished; cancel it first`);
        // Expired while queued: the same atomic claim as a cancel, so a worker cannot start it now.
        const claim = await accounting.claimForCancel(entry.model, id, 'expired');
        if (claim === 'running') throw new SpecError('CONFLICT', `job "${id}" is running; it will finish`);
      }
      // The job first, then what its record held: a crash in between leaves a record without a
      // job, which the reconciler gives back; the other order would leave a job counted nowhere.
      if (state !== 'unknown') await queue.remove(id);
      await accounting.release(entry.model, id);
      // One key per command: on a Redis Cluster these live in different slots.
      await Promise.all([jobIndexKey(prefix, id), webhookStatusKey(prefix, id)].map((k) => redis.del(k)));
      return { id, deleted: true as const };
    });
  }

  /**
   * Deletes a coalesced predict call once its entry finished: its record gives back what it held
   * and its index goes, so it reads as not found. Its result stays inside the shared entry (not
   * readable through the API any more) until the entry's retention removes it.
   */
  private async removeItem(entry: JobIndexEntry, id: string): Promise<{ id: string; deleted: true }> {
    const view = await this.parts.reads.view(entry, id);
    if (view && (view.status === 'queued' || view.status === 'running'))
      throw new SpecError('CONFLICT', `job "${id}" has not finished`);
    await this.parts.accounting.release(entry.model, id);
    await this.parts.index.remove(id);
    return { id, deleted: true as const };
  }
}

function alreadyExpired(id: string): SpecError {
  return new SpecError('CONFLICT', `job "${id}" has already finished: its deadline passed while it was queued`);
}
