/**
 * The worker's postprocessing threads: per-pixel work on large images (segmentation maps, mask
 * encodings) runs there instead of on the event loop that renews job locks, heartbeats and
 * runs every other model's jobs. One pool per worker process, started on first use.
 */
import { OffloopPool, ownBuffer, siblingModule } from '../../../shared/offloop/pool.js';
import type { TaskOptions } from '../../../shared/options/worker.js';
import type { SegmentationMaps } from '../decoders/family.js';

let pool: OffloopPool | null = null;

export function postprocessPool(options: Pick<TaskOptions, 'offloopThreads'>): OffloopPool {
  pool ??= new OffloopPool({
    module: siblingModule(import.meta.url, 'thread-tasks'),
    maxThreads: options.offloopThreads || undefined,
  });
  return pool;
}

export async function closePostprocessPool(): Promise<void> {
  const p = pool;
  pool = null;
  await p?.close();
}

/** Whether postprocessing of an output this large (width × height, times the masks for instance masks) leaves the event loop. */
export function offloopPostprocess(pixels: number, options: Pick<TaskOptions, 'offloopPostprocessPixels'>): boolean {
  const threshold = options.offloopPostprocessPixels;
  return threshold > 0 && pixels > threshold;
}

/** The maps' buffers, made movable (a view over a larger buffer is copied out first). */
export function mapBuffers(maps: SegmentationMaps): ArrayBuffer[] {
  const own = <T extends Int32Array | Float32Array>(a: T, make: (b: ArrayBuffer) => T): T =>
    a.byteOffset === 0 && a.byteLength === a.buffer.byteLength
      ? a
      : make(ownBuffer(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)));
  maps.preds = own(maps.preds, (b) => new Int32Array(b));
  maps.probs = own(maps.probs, (b) => new Float32Array(b));
  if (maps.perClass) maps.perClass = maps.perClass.map((p) => own(p, (b) => new Float32Array(b)));
  return [maps.preds, maps.probs, ...(maps.perClass ?? [])].map((a) => a.buffer as ArrayBuffer);
}

/** Masks made movable: each its own buffer. */
export function maskBuffers(masks: Uint8Array[]): { masks: Uint8Array[]; transfer: ArrayBuffer[] } {
  const owned = masks.map((m) => new Uint8Array(ownBuffer(m)));
  return { masks: owned, transfer: [...new Set(owned.map((m) => m.buffer as ArrayBuffer))] };
}
