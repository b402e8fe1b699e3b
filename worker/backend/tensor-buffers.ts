/**
 * Recycled tensor buffers. A page's input tensor is 8.5 MB (3 × 960 × 736 floats) and its
 * probability map 2.8 MB; a fresh ArrayBuffer that size costs far more than the loop that fills
 * it (the kernel maps and zeroes every page of it on first touch, and V8 counts it towards its
 * next collection): on the 2-core development VM about 8 ms CPU for 8.5 MB, against 0.2 ms to
 * rewrite one already in use. A worker serving pages makes the same few sizes over and over
 * (the tensor, the stacked batch, the map), so buffers that are done with come back here and
 * are handed out again.
 *
 * Whoever recycles a buffer promises that nothing reads or writes it afterwards; a recycled
 * buffer's contents are whatever its last user left (callers overwrite all of it, or fill it).
 */

export interface TensorBuffersOptions {
  /** Buffers smaller than this are left to the allocator (cheap enough there). Default 1 MiB. */
  minBytes?: number;
  /** Most bytes kept for reuse; the oldest go first past it. Default 96 MiB (a few batches of pages). */
  maxBytes?: number;
}

export class TensorBuffers {
  private readonly minBytes: number;
  private readonly maxBytes: number;
  /** Free buffers, oldest first (few at once: a handful of sizes, a few of each). */
  private free: ArrayBuffer[] = [];
  private bytes = 0;
  /** Buffers handed out again rather than allocated (tests and benches read it). */
  reused = 0;

  constructor(options: TensorBuffersOptions = {}) {
    this.minBytes = options.minBytes ?? 1024 * 1024;
    this.maxBytes = options.maxBytes ?? 96 * 1024 * 1024;
  }

  /** Bytes held for reuse now. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** `length` floats over a buffer of their own: recycled (any contents) or new (zeros). */
  float32(length: number): Float32Array {
    const byteLength = length * Float32Array.BYTES_PER_ELEMENT;
    if (byteLength >= this.minBytes) {
      // Newest first: it is the likeliest to still be in the caches.
      for (let i = this.free.length - 1; i >= 0; i--) {
        const buffer = this.free[i];
        if (buffer.byteLength !== byteLength) continue;
        this.free.splice(i, 1);
        this.bytes -= byteLength;
        this.reused++;
        return new Float32Array(buffer);
      }
    }
    return new Float32Array(length);
  }

  /**
   * Takes a buffer back for reuse. Nothing may use it (or any view of it) afterwards. Small,
   * shared, detached (moved to another thread) and already held buffers are ignored.
   */
  recycle(buffer: ArrayBufferLike | undefined): void {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < this.minBytes || buffer.byteLength > this.maxBytes)
      return;
    if (this.free.includes(buffer)) return;
    this.free.push(buffer);
    this.bytes += buffer.byteLength;
    while (this.bytes > this.maxBytes) this.bytes -= this.free.shift()!.byteLength;
  }

  /** Recycles the buffer a typed array spans when it spans all of it (a view into a larger one is not its to give). */
  recycleView(view: ArrayBufferView | undefined): void {
    if (view && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) this.recycle(view.buffer);
  }

  /** Drops every held buffer. */
  clear(): void {
    this.free = [];
    this.bytes = 0;
  }
}

/** The worker's buffers: one set per thread that makes or receives tensors (the event loop's). */
export const tensorBuffers = new TensorBuffers();
