/**
 * The job index: job id → its model and tenant (and what its view needs without reading its
 * data), so a request finds the job's queue and another tenant's job answers like a missing one.
 * Written with the job's accounting record at submit, kept as long as the job's side keys.
 *
 * The calls of a coalesced predict entry (shared/predict/entry.ts) share one key, the entry's
 * (EntryIndex): one write per entry, not per call. A call is found through its id's entry
 * (`entryOfItem`), unless it has a key of its own, which wins: the previous release wrote one per
 * call.
 */
import { SpecError } from '../../shared/errors.js';
import { entryOfItem } from '../../shared/predict/entry.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { entryIndexKey, jobIndexKey } from '../../shared/redis/keys.js';
import { luaCommands } from '../../shared/redis/lua-commands.js';

export interface JobIndexEntry {
  model: string;
  tenant: string | null;
  created_at: number;
  /** The job's deadline (null: none), so its view is read without its data. Absent in entries written before 0.2. */
  deadline_at?: number | null;
  canceled_at?: number;
  /**
   * A cancel found the job still queued past its deadline: it had failed already (it read failed
   * since the deadline), so it was claimed (never to run), removed and its quota given back; it
   * keeps reading failed.
   */
  expired_at?: number;
  /** Whether the job has a webhook (its delivery record is shown on the job). */
  webhook?: boolean;
  /** The job's trace (tracing on when it was submitted). */
  trace_id?: string;
  /** A coalesced predict call: the entry it rides in on the model's predict lane (shared/predict/entry.ts). */
  entry?: string;
}

/** The version of EntryIndex this release writes. A later one may add fields; it keeps these. */
export const ENTRY_INDEX_VERSION = 1;

/** One coalesced entry's index: its calls by their place in the entry (`<entry>.p<place>`). */
export interface EntryIndex {
  v: number;
  model: string;
  created_at: number;
  /** Place → the call's tenant and trace. A deleted call's place is gone. */
  items: Partial<Record<string, { tenant: string | null; trace_id?: string }>>;
}

/** A call of a coalesced entry, as its entry's index holds it. */
export interface IndexedCall {
  id: string;
  tenant: string | null;
  trace_id?: string;
}

export interface JobIndexOptions {
  /** Key prefix of the hub's keys (MODELHUB_PREFIX). */
  prefix: string;
  /** How long an entry lives, s: the job's side keys' TTL (shared/jobs/retention.ts sideKeyTtlS). */
  ttlS: number;
  /** Whether this API serves the model (an entry of a model no longer served reads as not found). */
  serves: (model: string) => boolean;
}

interface IndexCommands {
  modelhubEntryIndexRemoveItem(key: string, place: string): Promise<number>;
}

const commands = luaCommands<IndexCommands>({
  modelhubEntryIndexRemoveItem: { file: 'entry-index-remove-item.lua', numberOfKeys: 1 },
});

/** The job index entry of call `place` of an entry, from the entry's index (null: not there). */
export function callOfEntryIndex(entryId: string, place: number, index: EntryIndex): JobIndexEntry | null {
  const call = index.items[String(place)];
  if (!call) return null;
  return {
    model: index.model,
    tenant: call.tenant ?? null,
    created_at: index.created_at,
    deadline_at: null,
    entry: entryId,
    ...(call.trace_id ? { trace_id: call.trace_id } : {}),
  };
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

  /**
   * Indexes the calls of coalesced entry `entryId` in one key (replacing what it held: written
   * again with only the calls a quota let through). No calls: the key goes.
   */
  async writeEntry(entryId: string, model: string, createdAt: number, calls: IndexedCall[]): Promise<void> {
    const key = entryIndexKey(this.options.prefix, entryId);
    if (calls.length === 0) {
      await this.redis.del(key);
      return;
    }
    const items: EntryIndex['items'] = {};
    for (const c of calls) {
      const place = entryOfItem(c.id);
      if (place?.entry !== entryId) throw new Error(`"${c.id}" is not a call of entry "${entryId}"`);
      items[place.item] = { tenant: c.tenant, ...(c.trace_id ? { trace_id: c.trace_id } : {}) };
    }
    const index: EntryIndex = { v: ENTRY_INDEX_VERSION, model, created_at: createdAt, items };
    await this.redis.set(key, JSON.stringify(index), 'EX', this.options.ttlS);
  }

  /** Job `id`'s index entry, whoever's it is (null: none). */
  async lookUp(id: string): Promise<JobIndexEntry | null> {
    const call = entryOfItem(id);
    if (!call) {
      const raw = await this.reader.get(this.key(id));
      return raw ? (JSON.parse(raw) as JobIndexEntry) : null;
    }
    // Two keys in two slots on a Cluster: two commands, sent together.
    const [own, ofEntry] = await Promise.all([
      this.reader.get(this.key(id)),
      this.reader.get(entryIndexKey(this.options.prefix, call.entry)),
    ]);
    if (own) return JSON.parse(own) as JobIndexEntry;
    return ofEntry ? callOfEntryIndex(call.entry, call.item, JSON.parse(ofEntry) as EntryIndex) : null;
  }

  /** The tenant's job `id` (404 JOB_NOT_FOUND for a missing job or another tenant's). */
  async read(id: string, tenant: string | null): Promise<JobIndexEntry> {
    const entry = await this.lookUp(id);
    // Another tenant's job answers exactly like a missing one.
    if (!entry || entry.tenant !== tenant || !this.options.serves(entry.model))
      throw new SpecError('JOB_NOT_FOUND', `no job "${id}"`);
    return entry;
  }

  /**
   * Marks a job (never a coalesced call: those cannot be canceled) as ended unrun now, keeping its
   * key's TTL: `canceled` (canceled_at), or `expired` (expired_at: a cancel found it queued past its
   * deadline). Returns when.
   */
  async markEnded(id: string, entry: JobIndexEntry, how: 'canceled' | 'expired'): Promise<number> {
    const at = Date.now();
    const marked: JobIndexEntry = how === 'canceled' ? { ...entry, canceled_at: at } : { ...entry, expired_at: at };
    await this.redis.set(this.key(id), JSON.stringify(marked), 'KEEPTTL');
    return at;
  }

  /** Removes job `id` from the index: its own key, and for a coalesced call its place in its entry's. */
  async remove(id: string): Promise<void> {
    const call = entryOfItem(id);
    await Promise.all([
      this.redis.del(this.key(id)),
      call &&
        commands(this.redis).modelhubEntryIndexRemoveItem(
          entryIndexKey(this.options.prefix, call.entry),
          String(call.item),
        ),
    ]);
  }
}
