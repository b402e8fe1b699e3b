/**
 * End-to-end throughput (HTTP → Redis → batching worker → poll) against raw onnxruntime
 * throughput, same model and inputs, one process tree.
 *   npm run bench -- --model text-direction --jobs 400 --concurrency 32
 * Prints the figures and their ratios, including the worker's pipeline in-process (no queue,
 * no HTTP) to show where the gap is. Timings, not tests: run it on a quiet machine.
 */
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../shared/config.js';
import { ImagePreprocessSchema, loadModelRepository } from '../shared/manifest.js';
import { sessionOptionsFor } from '../worker/backend/device.js';
import { decodeImage, imageToTensor } from '../worker/tasks/image-preprocess.js';
import { stackFeeds } from '../worker/tasks/task.js';
import { Registry } from 'prom-client';
import { ModelRunner } from '../worker/model-runner.js';
import { createWorkerMetrics } from '../worker/metrics.js';
import { generateTestModels } from '../models/tools/generate-test-models.js';
import { pollJob, postJson, startHub } from '../test/helpers/hub.js';
import { textLineImage } from '../test/helpers/images.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'text-direction' },
    jobs: { type: 'string', default: '400' },
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '3' },
  },
});
const model = values.model!;
const totalJobs = Number(values.jobs);
const concurrency = Number(values.concurrency);

generateTestModels();
const config = loadConfig();
const entry = loadModelRepository(config).get(model);
if (!entry?.modelPath) throw new Error(`model ${model} is not available`);

// Inputs: rendered text lines (upright and rotated), different words, same as a client would send.
const words = ['Queue', 'Batch', 'Worker', 'Redis', 'Tensor', 'Metrics', 'Webhook', 'Device'];
const images = await Promise.all(
  words.map(async (w, i) => {
    const img = await textLineImage(`${w} throughput ${i}`);
    return (i % 2 ? await sharp(img).rotate(180).png().toBuffer() : img).toString('base64');
  }),
);

async function rawThroughput(): Promise<{ best: number; byBatch: Record<number, number> }> {
  const session = await ort.InferenceSession.create(entry!.modelPath!, sessionOptionsFor({ kind: 'cpu' }));
  const pre = ImagePreprocessSchema.parse(entry!.manifest.preprocess);
  const inputName = entry!.manifest.inputs.image;
  const items = await Promise.all(
    images.map(async (b64) => {
      const t = await imageToTensor(await decodeImage(b64, { maxImageBytes: 1e8, maxImagePixels: 1e8 }), pre);
      return { feeds: { [inputName]: { type: 'float32' as const, data: t.data, dims: t.dims } }, batchKey: '' };
    }),
  );
  const byBatch: Record<number, number> = {};
  for (const bs of [1, 2, 4, 8, 16, 32].filter((b) => b <= entry!.manifest.batching.max_batch_size * 2)) {
    const batch = stackFeeds(Array.from({ length: bs }, (_, i) => items[i % items.length]));
    await session.run(batch); // warm-up
    let n = 0;
    const started = performance.now();
    while (performance.now() - started < Number(values.seconds) * 1000) {
      await session.run(batch);
      n += bs;
    }
    byBatch[bs] = n / ((performance.now() - started) / 1000);
  }
  await session.release();
  return { best: Math.max(...Object.values(byBatch)), byBatch };
}

/** The worker's pipeline in-process (decode, resize, batcher, threaded session), no queue or HTTP. */
async function pipelineThroughput(): Promise<number> {
  const runner = await ModelRunner.load(entry!, { kind: 'cpu' }, config, createWorkerMetrics(new Registry()));
  await Promise.all(images.map((image) => runner.run({ image })));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < totalJobs) {
        next++;
        await runner.run({ image: images[next % images.length] });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await runner.close();
  return totalJobs / seconds;
}

async function endToEnd(): Promise<number> {
  const hub = await startHub({ name: 'bench', models: model });
  try {
    // Warm-up: a few jobs so the first batch's start-up is not measured.
    await Promise.all(images.map(async (image) => pollJob(hub.url, (await postJson(`${hub.url}/v1/models/${model}/jobs`, { input: { image } })).body.id)));
    let next = 0;
    let failed = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < totalJobs) {
          const i = next++;
          const r = await postJson(`${hub.url}/v1/models/${model}/jobs`, { input: { image: images[i % images.length] } });
          const job = await pollJob(hub.url, r.body.id, 120_000);
          if (job.status !== 'succeeded') failed += 1;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    if (failed) throw new Error(`${failed} jobs failed`);
    return totalJobs / seconds;
  } finally {
    await hub.stop();
  }
}

const raw = await rawThroughput();
const pipeline = await pipelineThroughput();
const e2e = await endToEnd();
console.log(`model: ${model} (${entry.weights} weights), cpu, ${images.length} distinct inputs`);
console.log(`raw onnxruntime session.run, images/s by batch size: ${Object.entries(raw.byBatch).map(([b, v]) => `${b}: ${v.toFixed(1)}`).join(', ')}`);
console.log(`raw onnxruntime, best batch size: ${raw.best.toFixed(1)} images/s`);
console.log(`worker pipeline in-process (decode + resize + batcher + session thread, ${concurrency} concurrent): ${pipeline.toFixed(1)} images/s (ratio to raw ${(pipeline / raw.best).toFixed(3)})`);
console.log(`end to end (HTTP submit + poll, ${concurrency} concurrent clients, ${totalJobs} jobs): ${e2e.toFixed(1)} jobs/s`);
console.log(`ratio end-to-end / raw: ${(e2e / raw.best).toFixed(3)}`);
process.exit(0);
