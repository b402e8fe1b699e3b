/**
 * What a tenant's batches hold, counted like its jobs (docs/exactness.md): each staged chunk has
 * a record in its model's hash slot, beside the jobs' records, and moves the tenant's counters in
 * the same atomic step: batch items in flight (TENANT_MAX_BATCH_ITEMS), batches in flight, and the
 * chunk's input bytes, which count in the stored bytes jobs' inputs count in
 * (TENANT_MAX_STORED_BYTES). A chunk's record is released once, whoever gets there first: the
 * worker that finished it, a cancel, the batch's final sweep, a failed upload, or the reconciler
 * once its staged inputs are gone (expired) or its upload is past the bound without a batch.
 */
import { bullJobKey } from '../redis/bullmq-internals.js';
import type { RedisClient } from '../redis/connection.js';
import { accountingKeys, batchKeys, bulkQueueName } from '../redis/keys.js';
import { luaCommands } from '../redis/lua-commands.js';

/**
 * The longest a batch upload can take: the API's HTTP server drops a request it has not received
 * whole by then (api/server.ts sets it, as Node's default). Its commit follows within a few Redis
 * timeouts, so a chunk still staged `ABANDONED_UPLOAD_MS` after it was counted, whose batch was
 * never committed, belongs to an upload that failed and could not clean up (its API died, or its
 * connection stayed cut through the retries).
 */
export const UPLOAD_TIMEOUT_MS = 300_000;
const ABANDONED_UPLOAD_MS = UPLOAD_TIMEOUT_MS + 60_000;

interface BatchAccountingCommands {
  modelhubAccountBatchChunk(...args: (string | number)[]): Promise<[BatchVerdict, number, number]>;
  modelhubAccountBatchRelease(...args: (string | number)[]): Promise<number>;
}

const commands = luaCommands<BatchAccountingCommands>({
  modelhubAccountBatchChunk: { file: 'account-batch-chunk.lua', numberOfKeys: 2 },
  modelhubAccountBatchRelease: { file: 'account-batch-release.lua', numberOfKeys: 2 },
});

/** 'ok': counted; 'items' / 'stored': that quota is reached, nothing was counted. */
export type BatchVerdict = 'ok' | 'items' | 'stored';

export interface BatchUsage {
  batches: number;
  items: number;
  storedBytes: number;
}

const tenantField = (tenant: string | null) => tenant ?? '-';
/** Records scanned per reconciliation call. */
const SLICE = 200;

export class BatchAccounting {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlS: number,
  ) {}

  /** Counts a chunk about to be staged, unless its tenant is at a quota. */
  async account(
    model: string,
    batch: string,
    chunk: number,
    share: { items: number; bytes: number; tenant: string | null },
    limits: { maxBatchItems: number; maxStoredBytes: number },
  ): Promise<{ verdict: BatchVerdict; items: number; storedBytes: number }> {
    const k = accountingKeys(this.prefix, model);
    const [verdict, items, storedBytes] = await commands(this.redis).modelhubAccountBatchChunk(
      k.batchRecords,
      k.usage,
      batch,
      chunk,
      share.items,
      share.bytes,
      tenantField(share.tenant),
      limits.maxBatchItems,
      limits.maxStoredBytes,
      Date.now(),
      this.ttlS,
    );
    return { verdict, items, storedBytes };
  }

  /** Gives back what `chunks` of `batch` hold (those still counted); returns the bytes released. */
  release(model: string, batch: string, chunks: number[]): Promise<number> {
    if (chunks.length === 0) return Promise.resolve(0);
    const k = accountingKeys(this.prefix, model);
    return commands(this.redis).modelhubAccountBatchRelease(k.batchRecords, k.usage, batch, this.ttlS, ...chunks);
  }

  async usage(model: string, tenant: string | null): Promise<BatchUsage> {
    const t = tenantField(tenant);
    const [batches, items, stored] = await this.redis.hmget(
      accountingKeys(this.prefix, model).usage,
      `bb|${t}`,
      `bi|${t}`,
      `bs|${t}`,
    );
    return { batches: Number(batches ?? 0), items: Number(items ?? 0), storedBytes: Number(stored ?? 0) };
  }

  /**
   * Releases every chunk record whose staged inputs are gone (finished, canceled, discarded, or
   * expired with its batch) but that is still counted: a worker or API that died between the two
   * steps. A record younger than `graceMs` is left alone (it is counted just before its inputs are
   * written). Staged inputs never come back once gone, so a check that saw them gone stays right.
   * A chunk still staged past the upload bound (ABANDONED_UPLOAD_MS) whose batch job does not
   * exist was left by a failed upload: its inputs are deleted, then it is released (a batch job
   * cannot appear after the bound, and one removed by retention has no chunk left to run).
   */
  async reconcile(model: string, graceMs: number, now = Date.now()): Promise<number> {
    const k = accountingKeys(this.prefix, model);
    let cursor = '0';
    let released = 0;
    do {
      const [next, flat] = await this.redis.hscan(k.batchRecords, cursor, 'COUNT', SLICE);
      cursor = next;
      const chunks: { batch: string; chunk: number; age: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const m = /^(.+)#(\d+)$/.exec(flat[i]);
        const age = now - Number(flat[i + 1].split('|')[2]);
        if (m && age > graceMs) chunks.push({ batch: m[1], chunk: Number(m[2]), age });
      }
      // One key per command: on a Cluster each batch's keys live in its own slot.
      const staged = await Promise.all(
        chunks.map((c) => this.redis.exists(batchKeys(this.prefix, c.batch).input(c.chunk))),
      );
      for (const [i, c] of chunks.entries()) {
        if (staged[i] === 1) {
          // Still staged: its batch may yet run, unless its upload is past the bound uncommitted.
          const abandoned = c.age > ABANDONED_UPLOAD_MS + graceMs && (await this.neverCommitted(model, c.batch));
          if (!abandoned) continue;
          await this.redis.del(batchKeys(this.prefix, c.batch).input(c.chunk));
        }
        released += await this.release(model, c.batch, [c.chunk]);
      }
    } while (cursor !== '0');
    return released;
  }

  /** Whether `batch` has no job on the model's bulk queue (the commit adds it with its chunks). */
  private async neverCommitted(model: string, batch: string): Promise<boolean> {
    return (await this.redis.exists(bullJobKey(this.prefix, bulkQueueName(model), batch))) === 0;
  }
}
