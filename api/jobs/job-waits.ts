/**
 * Waiting for jobs to finish: jobs this instance submitted through its own finish notices
 * (finish-waits.ts), any other job (GET with `Prefer: wait`) through BullMQ's QueueEvents
 * (job-finish-events.ts). Every wait is bounded and ends at once on close.
 */
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import type { JobView } from '../../shared/job-view.js';
import { predictQueueName } from '../../shared/redis/keys.js';
import { ATTR, inSpan } from '../../shared/tracing.js';
import { FinishWaits } from '../finish-waits.js';
import { JobFinishEvents } from '../job-finish-events.js';
import type { StoreCall } from '../store-call.js';
import type { JobIndex, JobIndexEntry } from './job-index.js';
import type { JobReads } from './job-reads.js';

export class JobWaits {
  /** Waits on jobs submitted elsewhere (GET with `Prefer: wait`): BullMQ's QueueEvents. */
  readonly finishes: JobFinishEvents;
  /** Waits on jobs this instance submitted: notices sent to this instance alone. */
  readonly notices: FinishWaits;

  constructor(
    connection: Pick<Config, 'MODELHUB_PREFIX' | 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>,
    log: Logger,
    private readonly index: JobIndex,
    private readonly reads: JobReads,
    private readonly store: StoreCall,
  ) {
    this.finishes = new JobFinishEvents(connection, log);
    this.notices = new FinishWaits(connection, log);
  }

  /** Waits up to `seconds` for the job to finish (QueueEvents: no polling), then returns its view. */
  async waitFor(id: string, tenant: string | null, seconds: number): Promise<JobView> {
    const entry = await this.store(() => this.index.read(id, tenant));
    if (seconds > 0 && !entry.canceled_at && !entry.expired_at)
      await inSpan('wait', { attributes: { [ATTR.jobId]: id, 'modelhub.wait_s': seconds } }, () =>
        this.untilFinished(entry, id, seconds * 1000),
      );
    return this.reads.get(id, tenant);
  }

  /** Resolves when the job finishes, is removed, or `ttlMs` passes; never rejects (a failed read counts as done: the caller's read reports it). */
  private untilFinished(entry: JobIndexEntry, id: string, ttlMs: number): Promise<void> {
    const isDone = async () => {
      try {
        const view = await this.reads.view(entry, id);
        return !view || (view.status !== 'queued' && view.status !== 'running');
      } catch {
        return true;
      }
    };
    // A coalesced predict call finishes with its entry, on the model's predict lane.
    if (entry.entry) return this.finishes.until(entry.model, entry.entry, ttlMs, isDone, predictQueueName(entry.model));
    return this.finishes.until(entry.model, id, ttlMs, isDone);
  }

  /** Set by close(): waits end at once and no new event streams are opened. */
  get closing(): boolean {
    return this.finishes.closing;
  }

  async close(): Promise<void> {
    await this.finishes.close();
    await this.notices.close();
  }
}
