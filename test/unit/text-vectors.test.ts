/**
 * Model-level tests of the text-vectors task: the bert-base-chinese manifest served by the
 * generated bert-test model, through ModelRunner (tokenize → batch → session.run → format).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { SpecError } from '../../shared/errors.js';
import { loadModel, type ModelEntry } from '../../shared/manifest.js';
import { BERT_TEST, bertReferenceForward, bertReferencePooler } from '../../models/tools/bert-test-model.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { parseVectors } from '../../worker/tasks/text/format-vectors.js';
import { BertTextTokenizer } from '../../worker/tasks/text/tokenizer.js';
import { TextPreprocessSchema } from '../../shared/manifest.js';

const config = loadConfig();
const H = BERT_TEST.hidden;
const EXAMPLE = JSON.parse(
  fs.readFileSync(path.join(REPO_ROOT, 'models/bert-base-chinese/example.json'), 'utf8'),
) as Record<string, unknown>;

function entryWith(batching: Partial<ModelEntry['manifest']['batching']>): ModelEntry {
  const entry = loadModel(path.join(REPO_ROOT, 'models/bert-base-chinese'), config);
  return { ...entry, manifest: { ...entry.manifest, batching: { ...entry.manifest.batching, ...batching } } };
}

async function runnerWith(batching: Partial<ModelEntry['manifest']['batching']>) {
  const registry = new Registry();
  const runner = await ModelRunner.load(
    entryWith(batching),
    { kind: 'cpu' },
    taskOptions(config),
    createWorkerMetrics(registry),
  );
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)!.get()) as { values: { value: number; metricName?: string }[] };
  const sessionRuns = async () => (await metric('modelhub_session_runs_total')).values.reduce((a, v) => a + v.value, 0);
  const batchSizes = async () => {
    const values = (await metric('modelhub_batch_size')).values;
    const pick = (suffix: string) =>
      values.filter((v) => v.metricName === `modelhub_batch_size_${suffix}`).reduce((a, v) => a + v.value, 0);
    return { count: pick('count'), sum: pick('sum') };
  };
  return { runner, sessionRuns, batchSizes };
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(tol);
}

let tokenizer: BertTextTokenizer;
beforeAll(() => {
  const entry = loadModel(path.join(REPO_ROOT, 'models/bert-base-chinese'), config);
  tokenizer = BertTextTokenizer.fromFile(entry.tokenizerPath!, TextPreprocessSchema.parse(entry.manifest.preprocess));
});

describe('bert-base-chinese catalog entry', () => {
  it('serves the generated test model with the real vocabulary while no weights are dropped in', async () => {
    const entry = loadModel(path.join(REPO_ROOT, 'models/bert-base-chinese'), config);
    expect(entry.weights).toBe('test');
    expect(entry.modelPath).toBe(path.join(config.MODELHUB_GENERATED_DIR, 'bert-test.onnx'));
    expect(entry.tokenizerPath).toBe(path.join(REPO_ROOT, 'models/bert-base-chinese/vocab.txt'));
    // bert-base-chinese's own ids: [CLS] 我 的 [SEP].
    expect((await tokenizer.encode('我的', '', 8)).ids).toEqual([101, 2769, 4638, 102]);
  });
});

describe('text-vectors on the test BERT', () => {
  let h: Awaited<ReturnType<typeof runnerWith>>;
  beforeAll(async () => {
    h = await runnerWith({ max_batch_size: 16, max_queue_delay_ms: 100, min_batch_size: 4, max_batch_tokens: 100_000 });
  });
  afterAll(async () => {
    await h.runner.close();
  });

  it('answers the spec example with the three fields in the spec string format', async () => {
    const { output } = await h.runner.run(EXAMPLE);
    expect(Object.keys(output).sort()).toEqual(['all_hidden_outputs', 'first_token_output', 'pool_output']);
    for (const v of Object.values(output)) expect(typeof v).toBe('string');
    const pool = parseVectors(output.pool_output as string);
    const first = parseVectors(output.first_token_output as string);
    const all = parseVectors(output.all_hidden_outputs as string);
    // H comes from the model (24 here), and all_hidden_outputs has sequence_length positions.
    expect(pool).toHaveLength(1);
    expect(pool[0]).toHaveLength(H);
    expect(first[0]).toHaveLength(H);
    expect(all).toHaveLength(128);
    for (const row of all) expect(row).toHaveLength(H);
    expect(output.all_hidden_outputs as string).toMatch(/^[-0-9.e,;]+$/);
  });

  it('first_token_output is position 0 of all_hidden_outputs, and pool_output is tanh(W·C + b)', async () => {
    const { output } = await h.runner.run(EXAMPLE);
    const first = parseVectors(output.first_token_output as string)[0];
    const all = parseVectors(output.all_hidden_outputs as string);
    expect(Array.from(first)).toEqual(Array.from(all[0]));
    closeTo(parseVectors(output.pool_output as string)[0], bertReferencePooler(first), 1e-5);
  });

  it('computes what a float64 BERT computes, padding positions included (as if padded to sequence_length)', async () => {
    const sequenceLength = 16;
    const { output } = await h.runner.run({ ...EXAMPLE, sequence_length: sequenceLength });
    const enc = await tokenizer.encode(EXAMPLE.first_sequence as string, '', sequenceLength);
    const pad = (a: number[], v: number) => [...a, ...Array(sequenceLength - a.length).fill(v)];
    const ids = pad(enc.ids, tokenizer.padId);
    const reference = bertReferenceForward(
      ids,
      pad(enc.typeIds, 0),
      pad(
        enc.ids.map(() => 1),
        0,
      ),
    );
    const all = parseVectors(output.all_hidden_outputs as string);
    expect(all).toHaveLength(sequenceLength);
    closeTo(Float32Array.from(all.flatMap((r) => Array.from(r))), reference, 1e-4);
  });

  it('answers the same vectors as JSON arrays with format "array"', async () => {
    const [asString, asArray] = await Promise.all([
      h.runner.run({ ...EXAMPLE, sequence_length: 12 }),
      h.runner.run({ ...EXAMPLE, sequence_length: 12, format: 'array' }),
    ]);
    const arrays = asArray.output as {
      pool_output: number[];
      first_token_output: number[];
      all_hidden_outputs: number[][];
    };
    expect(arrays.pool_output.join(',')).toBe(asString.output.pool_output);
    expect(arrays.first_token_output.join(',')).toBe(asString.output.first_token_output);
    expect(arrays.all_hidden_outputs).toHaveLength(12);
    expect(arrays.all_hidden_outputs.map((r) => r.join(',')).join(';')).toBe(asString.output.all_hidden_outputs);
  });

  it('answers only the fields asked for (pool_output by default)', async () => {
    expect(Object.keys((await h.runner.run({ first_sequence: '花呗' })).output)).toEqual(['pool_output']);
    const { output } = await h.runner.run({ first_sequence: '花呗', output_schema: 'first_token_output' });
    expect(Object.keys(output)).toEqual(['first_token_output']);
  });

  it('batches concurrent requests of different lengths into one session.run, and padding does not change vectors', async () => {
    const requests = [
      { first_sequence: '双十一', output_schema: 'pool_output,first_token_output' },
      {
        first_sequence: '双十一花呗提额在哪',
        second_sequence: 'how do i raise my credit limit?',
        output_schema: 'pool_output,first_token_output',
      },
      {
        first_sequence: 'hello world',
        sequence_length: 20,
        output_schema: 'pool_output,first_token_output,all_hidden_outputs',
      },
      {
        first_sequence: '花呗在哪里',
        second_sequence: '我的额度是什么',
        output_schema: 'first_token_output,pool_output',
      },
    ];
    // Alone: one request per batch.
    const alone: Awaited<ReturnType<ModelRunner['run']>>[] = [];
    for (const r of requests) alone.push(await h.runner.run(r));
    expect(alone.every((a) => a.batchSize === 1)).toBe(true);

    const runsBefore = await h.sessionRuns();
    const sizesBefore = await h.batchSizes();
    const together = await Promise.all(requests.map((r) => h.runner.run(r)));
    expect(await h.sessionRuns()).toBe(runsBefore + 1);
    const sizes = await h.batchSizes();
    expect(sizes.count - sizesBefore.count).toBe(1);
    expect(sizes.sum - sizesBefore.sum).toBe(requests.length);
    expect(together.every((t) => t.batchSize === requests.length)).toBe(true);

    together.forEach((t, i) => {
      for (const field of Object.keys(alone[i].output)) {
        const a = parseVectors(alone[i].output[field] as string);
        const b = parseVectors(t.output[field] as string);
        expect(b).toHaveLength(a.length);
        a.forEach((row, r) => closeTo(b[r], row, 1e-5));
      }
    });
  });
});

describe('text batching limits and failures', () => {
  it('keeps batches inside max_batch_tokens (items × longest item)', async () => {
    // Each request is 8 tokens ([CLS] 6 chars [SEP]): 24 tokens fit 3 of them per batch.
    const h = await runnerWith({
      max_batch_size: 16,
      max_queue_delay_ms: 100,
      min_batch_size: 3,
      max_batch_tokens: 24,
    });
    try {
      const runs = await Promise.all(Array.from({ length: 6 }, () => h.runner.run({ first_sequence: '双十一花呗提' })));
      expect(runs.map((r) => r.batchSize)).toEqual([3, 3, 3, 3, 3, 3]);
      expect(await h.sessionRuns()).toBe(2);
    } finally {
      await h.runner.close();
    }
  });

  it('fails a malformed or over-long request alone; its batch-mates succeed', async () => {
    const h = await runnerWith({ max_batch_size: 16, max_queue_delay_ms: 100, min_batch_size: 3 });
    try {
      const good = { first_sequence: '双十一花呗提额在哪', output_schema: 'pool_output' };
      const results = await Promise.allSettled([
        h.runner.run(good),
        h.runner.run({ ...good, sequence_length: 513 }),
        h.runner.run({ ...good, sequence_length: 0 }),
        h.runner.run({ ...good, sequence_length: 12.5 }),
        h.runner.run({ ...good, output_schema: 'pool_output,' }),
        h.runner.run({ ...good, output_schema: 'pooled' }),
        h.runner.run({ first_sequence: 'x'.repeat(100_001) }),
        h.runner.run({ ...good, extra: 1 }),
        h.runner.run({ ...good, first_sequence: 'hello '.repeat(2000), sequence_length: 512 }),
        h.runner.run(good),
      ]);
      const statuses = results.map((r) => r.status);
      expect(statuses).toEqual([
        'fulfilled',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(SpecError);
          expect((r.reason as SpecError).httpStatus).toBe(400);
        }
      }
      // The good ones ran together; the long one (truncated to 512 tokens) too.
      const ok = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<
        Awaited<ReturnType<ModelRunner['run']>>
      >[];
      expect(ok[0].value.output.pool_output).toBe(ok[2].value.output.pool_output);
      expect(ok.every((r) => r.value.batchSize === 3)).toBe(true);
    } finally {
      await h.runner.close();
    }
  });

  it('refuses a sequence_length beyond the model position embeddings', async () => {
    const entry = entryWith({});
    const small = {
      ...entry,
      manifest: { ...entry.manifest, preprocess: { ...entry.manifest.preprocess, max_position_embeddings: 64 } },
    };
    const runner = await ModelRunner.load(
      small,
      { kind: 'cpu' },
      taskOptions(config),
      createWorkerMetrics(new Registry()),
    );
    try {
      await expect(runner.run({ first_sequence: '花呗', sequence_length: 65 })).rejects.toMatchObject({
        kind: 'INVALID_INPUT',
      });
      // At the limit: served, one hidden row per position.
      const { output } = await runner.run({
        first_sequence: '花呗',
        sequence_length: 64,
        output_schema: 'all_hidden_outputs',
      });
      expect(Object.keys(output)).toEqual(['all_hidden_outputs']);
      expect((output.all_hidden_outputs as string).split(';')).toHaveLength(64);
    } finally {
      await runner.close();
    }
  });
});
