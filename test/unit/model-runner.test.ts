/** ModelRunner: one bad item in a batch fails alone, even when it makes onnxruntime throw. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { imageClassification } from '../../worker/tasks/image-classification.js';
import type { TaskFactory } from '../../worker/tasks/task.js';
import { b64, solidImage } from '../helpers/images.js';

const config = loadConfig({});
const entry = loadModelRepository(config).get('resnet50')!;

/** The real classification pipeline, except that `{ poison: true }` yields a tensor of the wrong size. */
const poisonable: TaskFactory = (ctx) => {
  const real = imageClassification(ctx);
  return {
    ...real,
    async preprocess(input) {
      const { poison, ...rest } = input;
      const item = await real.preprocess(rest);
      if (!poison) return item;
      const [name] = Object.keys(item.feeds);
      const feed = item.feeds[name];
      return {
        ...item,
        feeds: { [name]: { ...feed, data: (feed.data as Float32Array).subarray(0, 1000), dims: [3, 10, 10] } },
      };
    },
  };
};

describe('ModelRunner', () => {
  it('isolates an input that makes session.run throw: its batch-mates succeed, it fails with 2001', async () => {
    const registry = new Registry();
    const metrics = createWorkerMetrics(registry);
    // A long batching window so all four land in one batch, which then fails as a whole.
    const slowBatching = {
      ...entry,
      manifest: { ...entry.manifest, batching: { max_batch_size: 8, max_queue_delay_ms: 300, min_batch_size: 4 } },
    };
    const runner = await ModelRunner.load(slowBatching, { kind: 'cpu' }, taskOptions(config), metrics, {
      factory: poisonable,
    });
    const image = b64(await solidImage(64, 64, [200, 10, 10]));
    const results = await Promise.allSettled(
      [{ image }, { image, poison: true }, { image }, { image }].map((input) => runner.run(input)),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ kind: 'INFERENCE_FAILED', errorCode: 2001 });
    const ok = results
      .filter((r) => r.status === 'fulfilled')
      .map((r) => (r as PromiseFulfilledResult<any>).value.output.class);
    expect(new Set(ok).size).toBe(1);
    const total = async (name: string) =>
      (await registry.getSingleMetric(name)!.get()).values.reduce((a, v) => a + v.value, 0);
    // The batch of four threw once, then each item ran alone: three good runs of size 1, one more throw.
    expect(await total('modelhub_inference_errors_total')).toBe(2);
    expect(await total('modelhub_session_runs_total')).toBe(3);
    await runner.close();
  });

  it('holds a preprocessed item out of every inference batch until its start gate opens; a gate that rejects ends it unrun', async () => {
    const registry = new Registry();
    const runner = await ModelRunner.load(entry, { kind: 'cpu' }, taskOptions(config), createWorkerMetrics(registry));
    // A counter's total, or a histogram's observation count.
    const count = async (name: string) =>
      (await registry.getSingleMetric(name)!.get()).values
        .filter((v) => {
          // prom-client names a histogram's series (…_bucket, …_sum, …_count); its types do not say so.
          const series = (v as { metricName?: string }).metricName;
          return series === undefined || series.endsWith('_count');
        })
        .reduce((a, v) => a + v.value, 0);
    const image = b64(await solidImage(32, 32, [5, 50, 150]));
    let open!: () => void;
    let refuse!: (err: Error) => void;
    const claimed = new Promise<void>((resolve) => (open = resolve));
    const canceled = new Promise<void>((_, reject) => (refuse = reject));
    const kept = runner.run({ image }, claimed);
    const dropped = runner.run({ image }, canceled);
    // Both decode while their claims are out; neither may reach the session yet.
    while ((await count('modelhub_preprocess_seconds')) < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    expect(await count('modelhub_session_runs_total')).toBe(0);
    refuse(new Error('canceled before it ran'));
    await expect(dropped).rejects.toThrow('canceled before it ran');
    expect(await count('modelhub_session_runs_total')).toBe(0);
    open();
    expect((await kept).output).toBeDefined();
    expect(await count('modelhub_session_runs_total')).toBe(1);
    await runner.close();
  });

  it("reports jobs in flight for the worker registry's load figure", async () => {
    const runner = await ModelRunner.load(
      entry,
      { kind: 'cpu' },
      taskOptions(config),
      createWorkerMetrics(new Registry()),
    );
    const image = b64(await solidImage(32, 32, [1, 1, 1]));
    const pending = Promise.all([runner.run({ image }), runner.run({ image })]);
    expect(runner.inFlight).toBe(2);
    await pending;
    expect(runner.inFlight).toBe(0);
    await runner.close();
  });
});
