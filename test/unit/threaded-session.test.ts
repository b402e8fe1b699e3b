import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { sessionOptionsFor } from '../../worker/backend/device.js';
import { SessionThreadError, ThreadedSession } from '../../worker/backend/threaded-session.js';
import { Registry } from 'prom-client';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { b64, solidImage } from '../helpers/images.js';

const entry = loadModelRepository(loadConfig({})).get('resnet50')!;
const input = (n = 2) => ({
  data: new ort.Tensor('float32', new Float32Array(n * 3 * 224 * 224).fill(0.1), [n, 3, 224, 224]),
});

describe('ThreadedSession', () => {
  it('runs the model on its thread with the same outputs as a plain session', async () => {
    const threaded = await ThreadedSession.create(entry.modelPath!, sessionOptionsFor({ kind: 'cpu' }));
    const plain = await ort.InferenceSession.create(entry.modelPath!);
    const a = await threaded.run(input());
    const b = await plain.run(input());
    expect(a.resnetv24_dense0_fwd.dims).toEqual([2, 1000]);
    expect(Array.from(a.resnetv24_dense0_fwd.data as Float32Array)).toEqual(
      Array.from(b.resnetv24_dense0_fwd.data as Float32Array),
    );
    await threaded.release();
    await plain.release();
  });

  it('moves a feed it may take (transfer) instead of copying it, with the same outputs; copies otherwise', async () => {
    const threaded = await ThreadedSession.create(entry.modelPath!, sessionOptionsFor({ kind: 'cpu' }));
    const copied = input();
    const moved = input();
    const a = await threaded.run(copied);
    const b = await threaded.run(moved, { transfer: true });
    expect(copied.data.data.length).toBe(2 * 3 * 224 * 224); // still usable (a retry may need it)
    expect((moved.data.data as Float32Array).buffer.byteLength).toBe(0); // detached: moved, not copied
    expect(Array.from(b.resnetv24_dense0_fwd.data as Float32Array)).toEqual(
      Array.from(a.resnetv24_dense0_fwd.data as Float32Array),
    );
    // A view into a larger buffer is never moved: the rest of the buffer is not the run's.
    const big = new Float32Array(3 * 3 * 224 * 224).fill(0.1);
    const view = { data: new ort.Tensor('float32', big.subarray(0, 2 * 3 * 224 * 224), [2, 3, 224, 224]) };
    await threaded.run(view, { transfer: true });
    expect(big.length).toBe(3 * 3 * 224 * 224);
    await threaded.release();
  });

  it('when its thread dies: pending and later runs fail at once, release returns, onDeath is told once', async () => {
    const deaths: Error[] = [];
    const session = await ThreadedSession.create(entry.modelPath!, sessionOptionsFor({ kind: 'cpu' }), (err) =>
      deaths.push(err),
    );
    const pending = session.run(input(64)); // long enough to be cut off
    await session.kill();
    await expect(pending).rejects.toBeInstanceOf(SessionThreadError);
    await expect(session.run(input())).rejects.toBeInstanceOf(SessionThreadError);
    await session.release();
    expect(deaths).toHaveLength(1);
  });

  it('in a ModelRunner, a death during a batch fails every job of the batch at once and is reported', async () => {
    const deaths: Error[] = [];
    const slowBatching = {
      ...entry,
      manifest: { ...entry.manifest, batching: { max_batch_size: 8, max_queue_delay_ms: 200, min_batch_size: 8 } },
    };
    const runner = await ModelRunner.load(
      slowBatching,
      { kind: 'cpu' },
      taskOptions(loadConfig({})),
      createWorkerMetrics(new Registry()),
      { onSessionDeath: (e) => deaths.push(e) },
    );
    const image = b64(await solidImage(64, 64, [1, 2, 3]));
    const jobs = Promise.allSettled([1, 2, 3, 4].map(() => runner.run({ image })));
    await new Promise((r) => setTimeout(r, 100)); // all four wait in the batcher
    await (runner as unknown as { session: ThreadedSession }).session.kill();
    const settled = await jobs;
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ kind: 'INFERENCE_FAILED' });
    expect(deaths).toHaveLength(1);
    await runner.close();
  });

  it('a normal release is not reported as a death', async () => {
    const deaths: Error[] = [];
    const session = await ThreadedSession.create(entry.modelPath!, sessionOptionsFor({ kind: 'cpu' }), (err) =>
      deaths.push(err),
    );
    await session.release();
    expect(deaths).toHaveLength(0);
  });
});
