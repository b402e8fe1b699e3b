/**
 * A batch chunk's two moments in Redis, each one Lua script (the .lua files next to this module)
 * registered with ioredis `defineCommand`, like the job claims: starting it (unless the batch
 * was canceled) and storing its results exactly once.
 */
import type { ResultLine } from '../batches/view.js';
import type { RedisClient } from './connection.js';
import { batchKeys } from './keys.js';
import { luaCommands } from './lua-commands.js';
import { BatchAccounting } from '../batches/accounting.js';

interface ChunkCommands {
  modelhubStartChunk(
    counts: string,
    started: string,
    chunk: number,
    count: number,
    now: number,
    ttlS: number,
  ): Promise<'run' | 'canceled'>;
  modelhubFinishChunk(
    ...args: [
      string,
      string,
      string,
      string,
      string,
      number,
      string,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ]
  ): Promise<number>;
}

const commands = luaCommands<ChunkCommands>({
  modelhubStartChunk: { file: 'start-chunk.lua', numberOfKeys: 2 },
  modelhubFinishChunk: { file: 'finish-chunk.lua', numberOfKeys: 5 },
});

export interface ChunkRef {
  /** The batch's model: the chunk's accounting record lives in its hash slot. */
  model: string;
  batch: string;
  chunk: number;
  /** Items in the chunk. */
  count: number;
  /** Chunks in the batch. */
  chunks: number;
}

/** A worker starting a chunk: 'canceled' when the batch was canceled first, else 'run'. */
export function startChunk(
  redis: RedisClient,
  prefix: string,
  ref: ChunkRef,
  ttlS: number,
): Promise<'run' | 'canceled'> {
  const k = batchKeys(prefix, ref.batch);
  return commands(redis).modelhubStartChunk(k.counts, k.started, ref.chunk, ref.count, Date.now(), ttlS);
}

/**
 * Stores a chunk's result lines once and releases what the chunk held from its tenant's counts.
 * True when this call stored the lines.
 */
export async function finishChunk(
  redis: RedisClient,
  prefix: string,
  ref: ChunkRef,
  lines: ResultLine[],
  ttlS: number,
): Promise<boolean> {
  const stored = await storeChunkResults(redis, prefix, ref, lines, ttlS);
  // Then what the chunk held leaves its tenant's counts: idempotent, so whoever stored the results
  // (this call or an earlier one that died before this step) and every later caller may release.
  await new BatchAccounting(redis, prefix, ttlS).release(ref.model, ref.batch, [ref.chunk]);
  return stored;
}

/** The first step of finishChunk alone: the lines stored once (tests force what runs between the steps). */
export async function storeChunkResults(
  redis: RedisClient,
  prefix: string,
  ref: ChunkRef,
  lines: ResultLine[],
  ttlS: number,
): Promise<boolean> {
  const k = batchKeys(prefix, ref.batch);
  const count = (s: ResultLine['status']) => lines.filter((l) => l.status === s).length;
  const block = lines.map((l) => JSON.stringify(l)).join('\n');
  const stored = await commands(redis).modelhubFinishChunk(
    k.counts,
    k.results,
    k.done,
    k.started,
    k.input(ref.chunk),
    ref.chunk,
    block,
    count('succeeded'),
    count('failed'),
    count('canceled'),
    ref.count,
    Date.now(),
    ttlS,
    ref.chunks,
  );
  return stored === 1;
}
