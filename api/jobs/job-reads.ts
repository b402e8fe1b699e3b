/**
 * Reading jobs back: a job's view from its index entry and the fields of its hash a view needs
 * (never its input), a coalesced predict call's from its entry, and the webhook delivery record
 * of a job that has one. Reads go through the read connection.
 */
import { SpecError } from '../../shared/errors.js';
import {
  canceledView,
  expiredView,
  completedView,
  failedView,
  jobView,
  readJobFacts,
  readJobView,
  withTraceId,
  type JobView,
} from '../../shared/job-view.js';
import { itemView } from '../../shared/predict/view.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { webhookStatusKey } from '../../shared/redis/keys.js';
import type { Finish } from '../job-finish-events.js';
import type { StoreCall } from '../store-call.js';
import type { JobIndex, JobIndexEntry } from './job-index.js';
import type { JobQueues } from './job-queues.js';

/** What a submission that waited asked for its finished view. */
export interface FinishedViewRequest {
  tenant: string | null;
  /** The job has a webhook: its delivery record is shown, so the job is read in full. */
  webhook?: unknown;
  /** Predict: the spec output alone is answered, so no timestamps are read back. */
  outputOnly?: boolean;
}

export class JobReads {
  constructor(
    private readonly queues: JobQueues,
    private readonly index: JobIndex,
    private readonly reader: RedisClient,
    private readonly prefix: string,
    private readonly store: StoreCall,
  ) {}

  /** The job's view, reading only the fields it needs when the index knows the job's deadline. */
  async view(entry: JobIndexEntry, id: string): Promise<JobView | null> {
    if (entry.entry) {
      // A coalesced predict call: its entry's state, its own result.
      const known = { model: entry.model, ...(entry.trace_id ? { trace_id: entry.trace_id } : {}) };
      const facts = await readJobFacts(this.reader, this.queues.predictReadQueue(entry.model), entry.entry, known);
      return facts ? withTraceId(itemView(facts, id), entry.trace_id) : null;
    }
    const known =
      entry.deadline_at !== undefined
        ? {
            model: entry.model,
            deadline_at: entry.deadline_at ?? undefined,
            redis: this.reader,
            ...(entry.trace_id ? { trace_id: entry.trace_id } : {}),
          }
        : undefined;
    return readJobView(this.queues.readQueue(entry.model), id, known);
  }

  /** True once a job just submitted (not yet indexed for this read) finished or is gone. */
  async submittedDone(model: string, id: string): Promise<boolean> {
    const view = await readJobView(this.queues.readQueue(model), id, { model, redis: this.reader });
    return !view || (view.status !== 'queued' && view.status !== 'running');
  }

  async get(id: string, tenant: string | null): Promise<JobView> {
    return this.store(async () => {
      const entry = await this.index.read(id, tenant);
      const view = await this.view(entry, id);
      // A canceled job is gone from its queue, or (for a moment) held by a worker that lost the
      // claim and is about to drop it unrun: either way it reads canceled.
      // A job a cancel found expired reads failed, as it did since its deadline (a worker that had
      // fetched it drops it unrun, as CANCELED: that too reads failed).
      if (entry.expired_at && (!view || view.status !== 'succeeded'))
        return withTraceId(expiredView(id, entry.model, entry.created_at, entry.expired_at), entry.trace_id);
      if (entry.canceled_at && (!view || view.status === 'queued' || view.status === 'running')) {
        return withTraceId(canceledView(id, entry.model, entry.created_at, entry.canceled_at), entry.trace_id);
      }
      if (!view) throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
      if (entry.webhook) {
        const w: Partial<Record<string, string>> = await this.reader.hgetall(webhookStatusKey(this.prefix, id));
        view.webhook = {
          attempts: Number(w.attempts ?? 0),
          last_status: w.last_status ?? null,
          delivered_at: w.delivered_at ?? null,
        };
      }
      return view;
    });
  }

  /**
   * The finished job's view from its event: a completed or failed job is read back once (its
   * timestamps), without the index and state look-ups; anything else (removed: canceled, the
   * wait timed out, a webhook's delivery record to show) takes the full read.
   */
  async finished(submitted: JobView, request: FinishedViewRequest, outcome: Finish | null): Promise<JobView> {
    if (!outcome || outcome.event === 'removed' || request.webhook) return this.get(submitted.id, request.tenant);
    if (request.outputOnly)
      return outcome.event === 'completed'
        ? completedView(submitted, outcome.returnvalue)
        : failedView(submitted, outcome.failedReason);
    return this.store(async () => {
      // Finished: its deadline no longer matters to its status, and its input is not read.
      const facts = await readJobFacts(this.reader, this.queues.readQueue(submitted.model), submitted.id, {
        model: submitted.model,
        ...(submitted.trace_id ? { trace_id: submitted.trace_id } : {}),
      });
      return facts ? jobView(facts, outcome.event) : this.get(submitted.id, request.tenant);
    });
  }
}
