/**
 * Reading a batch upload without holding it: JSONL lines are cut from the request stream as it
 * arrives (a line longer than the limit is skipped, not buffered), validated, grouped into chunks
 * and each chunk is staged in Redis as soon as it is full. Only one chunk is in memory at a time.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { SpecError } from '../shared/errors.js';
import type { StagedItem } from '../shared/batches/payload.js';
import type { BodyMeter } from './body-meter.js';

export interface LineLimits {
  maxLineBytes: number;
  maxBytes: number;
  maxLines: number;
}

/** One non-blank line of the upload, or `tooLong` when it passed maxLineBytes (its bytes are dropped). */
export type UploadLine = { text: string; tooLong?: false } | { text?: undefined; tooLong: true; bytes: number };

/**
 * Lines of a JSONL stream ("\n" or "\r\n"; blank lines ignored). Throws BODY_TOO_LARGE past
 * maxBytes or maxLines. `hash` is fed every byte read, for Idempotency-Key comparison; `meter`
 * counts them for the door (a chunked upload is charged as it arrives, and may be stopped).
 */
export async function* jsonlLines(
  body: Readable,
  limits: LineLimits,
  hash: ReturnType<typeof createHash>,
  meter?: BodyMeter,
): AsyncGenerator<UploadLine> {
  let parts: Buffer[] = [];
  let partBytes = 0;
  let skipping = 0; // > 0 while dropping the rest of an over-long line
  let total = 0;
  let lines = 0;
  const emit = (line: Buffer | null, dropped: number): UploadLine | null => {
    if (line === null) return { tooLong: true, bytes: dropped };
    const text = line.toString('utf8').replace(/\r$/, '');
    if (text.trim() === '') return null;
    return { text };
  };
  const count = () => {
    lines += 1;
    if (lines > limits.maxLines)
      throw new SpecError('BODY_TOO_LARGE', `a batch holds at most ${limits.maxLines} items`);
  };
  for await (const piece of body as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > limits.maxBytes)
      throw new SpecError('BODY_TOO_LARGE', `a batch upload is at most ${limits.maxBytes} bytes`);
    const stop = meter?.add(piece.length);
    if (stop) throw stop;
    hash.update(piece);
    let start = 0;
    for (;;) {
      const nl = piece.indexOf(10, start);
      const end = nl === -1 ? piece.length : nl;
      const slice = piece.subarray(start, end);
      if (skipping > 0) skipping += slice.length;
      else if (partBytes + slice.length > limits.maxLineBytes) {
        skipping = partBytes + slice.length;
        parts = [];
        partBytes = 0;
      } else if (slice.length > 0) {
        parts.push(slice);
        partBytes += slice.length;
      }
      if (nl === -1) break;
      const out = skipping > 0 ? emit(null, skipping) : emit(Buffer.concat(parts), 0);
      parts = [];
      partBytes = 0;
      skipping = 0;
      if (out) {
        count();
        yield out;
      }
      start = nl + 1;
    }
  }
  const last = skipping > 0 ? emit(null, skipping) : partBytes > 0 ? emit(Buffer.concat(parts), 0) : null;
  if (last) {
    count();
    yield last;
  }
}

/** Cuts staged items into chunks by count and bytes; `stage` stores one chunk (awaited: backpressure). */
export class ChunkStager {
  private items: string[] = [];
  private bytes = 0;
  /** Item count of every chunk staged so far, in order. */
  readonly sizes: number[] = [];
  total = 0;

  get chunks(): number {
    return this.sizes.length;
  }

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
    private readonly stage: (chunk: number, json: string) => Promise<void>,
  ) {}

  async add(item: StagedItem): Promise<void> {
    const json = JSON.stringify(item);
    if (this.items.length > 0 && this.bytes + json.length > this.maxBytes) await this.flush();
    this.items.push(json);
    this.bytes += json.length;
    this.total += 1;
    if (this.items.length >= this.maxItems) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.items.length === 0) return;
    const json = `[${this.items.join(',')}]`;
    const chunk = this.sizes.length;
    this.sizes.push(this.items.length);
    this.items = [];
    this.bytes = 0;
    await this.stage(chunk, json);
  }
}
