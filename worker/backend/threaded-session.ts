/**
 * An onnxruntime session hosted on its own worker thread (see session-host.mjs): same
 * `run(feeds) → outputs` shape as ort.InferenceSession, but the event loop stays free while
 * it computes. onnxruntime's own intra-op threads still do the math inside that thread.
 */
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { tensorBuffers } from './tensor-buffers.js';

interface WireTensor {
  type: ort.Tensor.Type;
  dims: readonly number[];
  data: ort.Tensor.DataType;
}

/** An input's or output's declared tensor: dims are numbers (fixed) or names (dynamic). */
export interface TensorSignature {
  name: string;
  type: string | null;
  shape: Array<number | string>;
}

type HostMessage =
  | {
      type: 'ready';
      inputNames?: string[];
      outputNames?: string[];
      threads?: SessionThreadIds;
      inputMetadata?: TensorSignature[];
      outputMetadata?: TensorSignature[];
      error?: string;
    }
  | {
      type: 'result';
      id: number;
      outputs?: Record<string, WireTensor>;
      /** The run's input buffers, handed back (see tensor-buffers.ts). */
      inputs?: ArrayBuffer[];
      error?: string;
    }
  | { type: 'released' };

export interface InferenceBackend {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared shapes of the inputs and outputs, where the backend knows them. */
  readonly signature?: { inputs: readonly TensorSignature[]; outputs: readonly TensorSignature[] };
  run(feeds: Record<string, ort.Tensor>, options?: RunOptions): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

export interface RunOptions {
  /**
   * The feeds' buffers belong to this run alone (e.g. a freshly stacked batch): they are moved
   * to the session thread instead of copied, and are unusable afterwards. Default false.
   */
  transfer?: boolean;
}

/** Linux thread ids: the hosting thread and the pool threads onnxruntime started for the session. */
export interface SessionThreadIds {
  host: number | null;
  pool: number[];
}

export class SessionThreadError extends Error {
  override name = 'SessionThreadError';
}

export class ThreadedSession implements InferenceBackend {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (o: ort.InferenceSession.ReturnType) => void; reject: (e: Error) => void }
  >();
  private released: (() => void) | null = null;
  /** Set once the thread is gone: every later call fails at once instead of waiting forever. */
  private dead: SessionThreadError | null = null;
  private releasing = false;
  signature?: { inputs: readonly TensorSignature[]; outputs: readonly TensorSignature[] };

  private constructor(
    private readonly thread: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly threadIds: SessionThreadIds,
    private readonly onDeath: (err: SessionThreadError) => void,
  ) {
    thread.on('message', (msg: HostMessage) => this.onMessage(msg));
    thread.on('error', (err) => this.die(new SessionThreadError(`session thread crashed: ${err.message}`)));
    thread.on('exit', (code) => this.die(new SessionThreadError(`session thread exited (${code})`)));
  }

  /** `onDeath` is told once if the thread dies before release() (out of memory, a native crash). */
  static create(
    modelPath: string,
    options: ort.InferenceSession.SessionOptions,
    onDeath: (err: SessionThreadError) => void = () => undefined,
  ): Promise<ThreadedSession> {
    const thread = new Worker(new URL('./session-host.mjs', import.meta.url), { workerData: { modelPath, options } });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new SessionThreadError(`session thread failed to start: ${err.message}`));
      thread.once('error', onError);
      thread.once('message', (msg: HostMessage) => {
        thread.off('error', onError);
        if (msg.type !== 'ready' || msg.error) {
          void thread.terminate();
          reject(new Error(msg.type === 'ready' && msg.error ? msg.error : 'session thread did not start'));
          return;
        }
        const session = new ThreadedSession(
          thread,
          msg.inputNames!,
          msg.outputNames!,
          msg.threads ?? { host: null, pool: [] },
          onDeath,
        );
        session.signature = { inputs: msg.inputMetadata ?? [], outputs: msg.outputMetadata ?? [] };
        resolve(session);
      });
    });
  }

  run(feeds: Record<string, ort.Tensor>, options: RunOptions = {}): Promise<ort.InferenceSession.ReturnType> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const wire: Record<string, WireTensor> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const [name, t] of Object.entries(feeds)) {
      wire[name] = { type: t.type, dims: t.dims, data: t.data };
      const data = t.data as ArrayBufferView;
      // Only a buffer the tensor fills whole is moved: a view into a larger one would move (and
      // detach) bytes that are not this run's.
      if (
        options.transfer &&
        data.buffer instanceof ArrayBuffer &&
        data.byteOffset === 0 &&
        data.byteLength === data.buffer.byteLength
      )
        transfer.add(data.buffer);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ type: 'run', id, feeds: wire }, [...transfer]);
    });
  }

  async release(): Promise<void> {
    this.releasing = true;
    if (this.dead) return;
    await new Promise<void>((resolve) => {
      this.released = resolve;
      this.thread.postMessage({ type: 'release' });
    });
    await this.thread.terminate();
  }

  /** Terminates the thread at once, as a crash would: pending and later runs fail, onDeath is told. */
  async kill(): Promise<void> {
    await this.thread.terminate();
  }

  private onMessage(msg: HostMessage): void {
    if (msg.type === 'released') {
      this.released?.();
      return;
    }
    if (msg.type !== 'result') return;
    for (const buffer of msg.inputs ?? []) tensorBuffers.recycle(buffer);
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) {
      p.reject(new Error(msg.error));
      return;
    }
    const outputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(msg.outputs!))
      outputs[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    p.resolve(outputs);
  }

  private die(err: SessionThreadError): void {
    if (this.dead) return;
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.released?.();
    if (!this.releasing) this.onDeath(err);
  }
}
