/**
 * One onnxruntime session per distinct model file (and session options) in a worker. Models
 * that share a file, like the three PaddleOCR DBNet text models (detection, instances,
 * segmentation), share its session: one copy of the weights, one thread pool, one thread.
 * Each model keeps its own batcher; their runs take turns on the shared session thread.
 */
import type * as ort from 'onnxruntime-node';
import {
  ThreadedSession,
  type InferenceBackend,
  type RunOptions,
  type SessionThreadIds,
  type SessionThreadError,
} from './threaded-session.js';

interface Entry {
  session: Promise<ThreadedSession>;
  users: number;
}

export class SessionPool {
  private readonly entries = new Map<string, Entry>();

  /** `onDeath` is told when any pooled session's thread dies (see ThreadedSession.create). */
  constructor(private readonly onDeath: (err: SessionThreadError) => void = () => undefined) {}

  /** Sessions open now (distinct files and options). */
  get size(): number {
    return this.entries.size;
  }

  /** A handle on the file's session, started on first use; release() the handle when done. */
  async acquire(
    modelPath: string,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<InferenceBackend & { threadIds: SessionThreadIds }> {
    const key = JSON.stringify([modelPath, options]);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { session: ThreadedSession.create(modelPath, options, this.onDeath), users: 0 };
      this.entries.set(key, entry);
      const created = entry;
      created.session.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    entry.users += 1;
    let session: ThreadedSession;
    try {
      session = await entry.session;
    } catch (err) {
      entry.users -= 1;
      throw err;
    }
    let released = false;
    return {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      threadIds: session.threadIds,
      signature: session.signature,
      run: (feeds: Record<string, ort.Tensor>, runOptions?: RunOptions) => session.run(feeds, runOptions),
      release: async () => {
        if (released) return;
        released = true;
        entry.users -= 1;
        if (entry.users > 0) return;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        await session.release();
      },
    };
  }
}
