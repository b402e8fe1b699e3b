/**
 * The queue the API adds jobs through: a BullMQ Queue whose jobs store a large base64 image
 * without turning it into UTF-8 twice more on the event loop.
 *
 * BullMQ stores a job's data as `JSON.stringify(data)`, and ioredis (its arguments hold a Buffer,
 * so it writes in buffer mode) then measures and copies that string as UTF-8 three times
 * (`Buffer.byteLength` ×2 and `Buffer#write`): profiled with bench/intake-loop.ts, ~12 ms of the
 * API's main thread per MB of image, the largest item of its per-body work. Here the data's JSON
 * is made with a short placeholder where the image goes and handed to ioredis as a Buffer, with
 * the image's characters copied in as bytes (one memcpy): a validated base64 string is ASCII and
 * needs no JSON escaping, so the bytes stored are exactly `JSON.stringify(data)`'s.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue } from 'bullmq';

/** Shorter images go the usual way: the saving would not pay for the second stringify. */
export const SPLICE_MIN_CHARS = 64 * 1024;

/** Base64 only (no quote, backslash, control or non-ASCII character): safe to copy into JSON as it is. */
const JSON_SAFE_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Stands for the image in the data's JSON; random per process, so no client can send it. */
const PLACEHOLDER = `modelhub-image-${randomUUID()}`;
const QUOTED_PLACEHOLDER = JSON.stringify(PLACEHOLDER);

interface WithImage {
  input: { image: string } & Record<string, unknown>;
}

/** Inputs whose image validation found to be base64 (the schema's check), so it is not scanned again. */
const checkedImages = new WeakMap<object, string>();

/** Records that `input.image` passed the base64 check (input-validation.ts, after the task's schema). */
export function vouchForImage(input: Record<string, unknown>): void {
  if (typeof input.image === 'string') checkedImages.set(input, input.image);
}

function largeImageOf(data: unknown): string | null {
  const input = (data as Partial<WithImage> | null)?.input;
  const image = input?.image;
  if (typeof image !== 'string' || image.length < SPLICE_MIN_CHARS) return null;
  // A 1 MB regular-expression scan is ~1-2 ms of the loop: skipped for the image validation checked.
  if (checkedImages.get(input!) === image) return image;
  return JSON_SAFE_BASE64.test(image) ? image : null;
}

/** `JSON.stringify(data)` as UTF-8 bytes, the image copied in rather than serialised and re-encoded. */
export function serialiseWithImage(data: WithImage, image: string): Buffer {
  const json = JSON.stringify({ ...data, input: { ...data.input, image: PLACEHOLDER } });
  const at = json.indexOf(QUOTED_PLACEHOLDER);
  const head = Buffer.from(json.slice(0, at + 1), 'utf8');
  const tail = Buffer.from(json.slice(at + QUOTED_PLACEHOLDER.length - 1), 'utf8');
  const out = Buffer.allocUnsafe(head.length + image.length + tail.length);
  head.copy(out, 0);
  // latin1 writes one byte per character, no UTF-8 scan: the same bytes for ASCII.
  out.write(image, head.length, 'latin1');
  tail.copy(out, head.length + image.length);
  return out;
}

class ImageJob extends Job {
  override asJSON(): ReturnType<Job['asJSON']> {
    const image = largeImageOf(this.data);
    if (image === null) return super.asJSON();
    const data = this.data as WithImage;
    // The rest of the record as BullMQ makes it; `data` is replaced by its bytes, which BullMQ
    // passes to the add script's arguments as they are (ioredis sends a Buffer without re-encoding).
    this.data = { v: 0 };
    try {
      const json = super.asJSON();
      if (this.queue instanceof ImageJobQueue) this.queue.imagesSpliced++;
      return { ...json, data: serialiseWithImage(data, image) as unknown as string };
    } finally {
      this.data = data;
    }
  }
}

export class ImageJobQueue<D = unknown, R = unknown> extends Queue<D, R> {
  /** Jobs stored with their image copied in as bytes (tests check that the path was taken). */
  imagesSpliced = 0;

  protected override get Job(): typeof Job {
    // Same constructor and statics; only asJSON differs.
    return ImageJob as unknown as typeof Job;
  }
}
