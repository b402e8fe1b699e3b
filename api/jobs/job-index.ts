/**
 * The job index: job id → its model and tenant (and what its view needs without reading its
 * data), so a request finds the job's queue and another tenant's job answers like a missing one.
 * Written with the job's accounting record at submit, kept as long as the job's side keys.
 */
import { SpecError } from '../../shared/errors.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { jobIndexKey } from '../../shared/redis/keys.js';

export interface JobIndexEntry {
  model: string;
  tenant: string | null;
  created_at: number;
  /** The job's deadline (null: none), so its view is read without its data. Absent in entries written before 0.2. */
  deadline_at?: number | null;
  canceled_at?: number;
  /** Whether the job has a webhook (its delivery record is shown on the job). */
  webhook?: boolean;
  /** The job's trace (tracing on when it was submitted). */
  trace_id?: string;
  /** A coalesced predict call: the entry it rides in on the model's predict lane (shared/predict/entry.ts). */
  entry?: string;
}

export interface JobIndexOptions {
  /** Key prefix of the hub's keys (MODELHUB_PREFIX). */
  prefix: string;
  /** How long an entry lives, s: the job's side keys' TTL (shared/jobs/retention.ts sideKeyTtlS). */
  ttlS: number;
  /** Whether this API serves the model (an entry of a model no longer served reads as not found). */
  serves: (model: string) => boolean;
}

export class JobIndex {
  /**
   * @param redis - the submit connection: entries are written, replaced and deleted through it
   * @param reader - the read connection: entries are read through it
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly reader: RedisClient,
    private readonly options: JobIndexOptions,
  ) {}

  private key(id: string): string {
    return jobIndexKey(this.options.prefix, id);
  }

  async write(id: string, entry: JobIndexEntry): Promise<void> {
    await this.redis.set(this.key(id), JSON.stringify(entry), 'EX', this.options.ttlS);
  }

  /** The tenant's job `id` (404 JOB_NOT_FOUND for a missing job or another tenant's). */
  async read(id: string, tenant: string | null): Promise<JobIndexEntry> {
    const raw = await this.reader.get(this.key(id));
    const entry = raw ? (JSON.parse(raw) as JobIndexEntry) : null;
    // Another tenant's job answers exactly like a missing one.
    if (!entry || entry.tenant !== tenant || !this.options.serves(entry.model))
      throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
    return entry;
  }

  /** Marks the job canceled now, keeping the entry's TTL; returns the entry as written. */
  async markCanceled(id: string, entry: JobIndexEntry): Promise<JobIndexEntry & { canceled_at: number }> {
    const canceled = { ...entry, canceled_at: Date.now() };
    await this.redis.set(this.key(id), JSON.stringify(canceled), 'KEEPTTL');
    return canceled;
  }

  async remove(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }
}
