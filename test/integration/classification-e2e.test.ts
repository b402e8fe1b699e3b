/**
 * The spine end to end: HTTP → per-model BullMQ queue → a real worker process (batching
 * onnxruntime) → polled back, with the spec's exact fields.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifierReferenceLogits } from '../../models/tools/classification-test-model.js';
import { softmax } from '../../worker/tasks/image-classification.js';
import {
  getJson,
  metricValue,
  pollJob,
  postJson,
  startHub,
  whileWorkerHeld,
  type Hub,
  type WorkerProcess,
} from '../helpers/hub.js';
import { b64, solidImage, textLineImage } from '../helpers/images.js';

let hub: Hub<WorkerProcess>;
beforeAll(async () => {
  hub = await startHub({
    workerProcesses: true,
    name: 'e2e',
    env: { MAX_IMAGE_BYTES: '300000', MAX_IMAGE_PIXELS: '4000000' },
  });
});
afterAll(async () => {
  await hub?.stop();
});

describe('jobs through the queue', () => {
  it('accepts a job (202), then GET /v1/jobs/:id answers the spec §1.1 output', async () => {
    const image = await solidImage(320, 240, [30, 60, 240]);
    const submitted = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image: b64(image) } });
    expect(submitted.status).toBe(202);
    expect(Object.keys(submitted.body).sort()).toEqual(['created_at', 'id', 'model', 'status', 'urls']);
    expect(submitted.body).toMatchObject({
      model: 'resnet50',
      status: 'queued',
      urls: { get: `/v1/jobs/${submitted.body.id}`, cancel: `/v1/jobs/${submitted.body.id}/cancel` },
    });
    expect(new Date(submitted.body.created_at).toISOString()).toBe(submitted.body.created_at);

    const job = await pollJob(hub.url, submitted.body.id);
    expect(job.status).toBe('succeeded');
    expect(Object.keys(job.output).sort()).toEqual([
      'class',
      'class_name',
      'class_probs',
      'error_code',
      'request_id',
      'success',
    ]);
    expect(job.output.request_id).toBe(submitted.body.id);
    expect(job.output.success).toBe(true);
    expect(job.output.error_code).toBe(0);

    const m = ([30, 60, 240] as const).map(
      (v, c) => (v / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c],
    ) as [number, number, number];
    const probs = softmax(classifierReferenceLogits(m));
    const best = probs.indexOf(Math.max(...probs));
    expect(job.output.class).toBe(best);
    expect(Number.isInteger(job.output.class)).toBe(true);
    expect(typeof job.output.class_name).toBe('string');
    expect(Object.keys(job.output.class_probs)).toHaveLength(1000);
    const sum = Object.values(job.output.class_probs as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(1, 5);
    expect(job.metrics.batch_size).toBeGreaterThanOrEqual(1);
    expect(job.metrics.inference_ms).toBeGreaterThan(0);
    expect(job.metrics.queue_ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(job.completed_at)).toBeGreaterThanOrEqual(Date.parse(job.started_at));
  });

  it('predict answers the spec output itself: real text-direction says 0 upright and 180 rotated', async () => {
    const upright = await textLineImage('Results by polling');
    const rotated = await sharp(upright).rotate(180).png().toBuffer();
    const a = await postJson(`${hub.url}/v1/models/text-direction/predict`, { image: b64(upright) });
    const b = await postJson(`${hub.url}/v1/models/text-direction/predict`, {
      image: `data:image/png;base64,${b64(rotated)}`,
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ class: 0, class_name: '0', success: true, error_code: 0 });
    expect(b.body).toMatchObject({ class: 1, class_name: '180', success: true });
    expect(Object.keys(a.body.class_probs).sort()).toEqual(['0', '180']);
    // One call alone shared its queue entry with nobody.
    const { metrics, ...answer } = b.body;
    expect(metrics).toEqual({ entry_items: 1 });
    // The synchronous answer is also a job, readable afterwards.
    const again = await getJson(`${hub.url}/v1/jobs/${b.body.request_id}`);
    expect(again.body.output).toEqual(answer);
  });

  it('predict of an image that fails in the worker answers its spec error, the same one the job keeps', async () => {
    // Header, size and end marker are fine (the door lets it in); the compressed data is not.
    const png = Buffer.from(await solidImage(64, 64, [9, 99, 199]));
    const idat = png.indexOf('IDAT');
    for (let i = idat + 4; i < idat + 24; i++) png[i] = 0xaa;
    const r = await postJson(`${hub.url}/v1/models/text-direction/predict`, { image: b64(png) });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ success: false, error_code: 1003 });
    expect(r.body.error_msg).toMatch(/could not be decoded/);
    const job = await getJson(`${hub.url}/v1/jobs/${r.body.request_id}`);
    expect(job.body.status).toBe('failed');
    expect(job.body.output).toEqual(r.body);
  });

  it('Prefer: wait=N answers 200 with the finished job', async () => {
    const r = await postJson(
      `${hub.url}/v1/models/resnet50/jobs`,
      { input: { image: b64(await solidImage(64, 64, [1, 2, 3])) } },
      { Prefer: 'wait=20' },
    );
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('succeeded');
    expect(r.body.output.success).toBe(true);
  });
});

describe('batching', () => {
  it('runs many simultaneous jobs in fewer session.run calls than jobs, all correct', async () => {
    const page = async () => (await fetch(`${hub.workers[0].metricsUrl}/metrics`)).text();
    const labels = { model: 'text-direction', device: 'cpu' };
    const before = await page();
    const runsBefore = metricValue(before, 'modelhub_session_runs_total', labels);
    const jobsBefore = metricValue(before, 'modelhub_batch_size_sum', labels);

    const upright = await textLineImage('Batch me please');
    const rotated = await sharp(upright).rotate(180).png().toBuffer();
    const n = 48;
    const ids = await whileWorkerHeld(hub.workers[0], () =>
      Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const r = await postJson(`${hub.url}/v1/models/text-direction/jobs`, {
            input: { image: b64(i % 2 ? rotated : upright) },
          });
          expect(r.status).toBe(202);
          return r.body.id as string;
        }),
      ),
    );
    const jobs = await Promise.all(ids.map((id) => pollJob(hub.url, id, 60_000)));
    jobs.forEach((job, i) => {
      expect(job.status).toBe('succeeded');
      expect(job.output.class_name).toBe(i % 2 ? '180' : '0');
    });

    const after = await page();
    const runs = metricValue(after, 'modelhub_session_runs_total', labels) - runsBefore;
    const batched = metricValue(after, 'modelhub_batch_size_sum', labels) - jobsBefore;
    expect(batched).toBe(n);
    expect(runs).toBeLessThan(n);
    expect(Math.max(...jobs.map((j) => j.metrics.batch_size))).toBeGreaterThan(1);
  });
});

describe('bad input', () => {
  const submit = (body: unknown, model = 'resnet50') => postJson(`${hub.url}/v1/models/${model}/jobs`, body);

  it.each([
    ['bad JSON', '{"input": {"image": ', 400, 1001],
    ['missing input', {}, 400, 1002],
    ['missing image', { input: {} }, 400, 1002],
    ['image of the wrong type', { input: { image: 42 } }, 400, 1002],
    ['an unknown field', { input: { image: 'aGVsbG8=', colour: 'red' } }, 400, 1002],
    ['not base64', { input: { image: 'this is *not* base64!' } }, 400, 1003],
    ['not an image', { input: { image: Buffer.from('plain text, not a picture').toString('base64') } }, 400, 1003],
    ['a wrong priority', { input: { image: 'aGVsbG8=' }, priority: 11 }, 400, 1002],
  ])('%s → %i with error_code %i', async (_name, body, status, code) => {
    const r = await submit(body);
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ success: false, error_code: code });
    expect(typeof r.body.error_msg).toBe('string');
    expect(r.body.error_msg.length).toBeGreaterThan(0);
  });

  it('refuses images too large by bytes or by pixels with 413', async () => {
    const noisy = await sharp(Buffer.from(Array.from({ length: 400 * 400 * 3 }, (_, i) => (i * 7919) % 251)), {
      raw: { width: 400, height: 400, channels: 3 },
    })
      .png({ compressionLevel: 0 })
      .toBuffer();
    const bytes = await submit({ input: { image: b64(noisy) } });
    expect(bytes.status).toBe(413);
    expect(bytes.body.error_code).toBe(1004);
    const huge = await sharp({ create: { width: 2100, height: 2000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const pixels = await submit({ input: { image: b64(huge) } });
    expect(pixels.status).toBe(413);
    expect(pixels.body.error_msg).toMatch(/2100×2000 pixels/);
  });

  it('404s unknown models, jobs and routes with spec errors', async () => {
    expect((await submit({ input: { image: 'aGVsbG8=' } }, 'no-such-model')).body).toMatchObject({
      success: false,
      error_code: 1201,
    });
    const job = await getJson(`${hub.url}/v1/jobs/00000000-0000-0000-0000-000000000000`);
    expect(job.status).toBe(404);
    expect(job.body.error_code).toBe(1202);
    expect((await getJson(`${hub.url}/v2/nothing`)).status).toBe(404);
  });

  it('refuses a truncated image at the door (no end marker)', async () => {
    const truncated = (await solidImage(600, 600, [9, 9, 9], 'jpeg')).subarray(0, 700);
    const r = await submit({ input: { image: b64(truncated) } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error_code: 1003, error_msg: expect.stringMatching(/truncated/) });
  });

  it("a corrupt image that passes the door's checks fails alone in the worker; its batch-mates succeed", async () => {
    const good = await solidImage(200, 200, [120, 30, 200]);
    const noisy = await sharp(Buffer.from(Array.from({ length: 300 * 300 * 3 }, (_, i) => (i * 7919) % 251)), {
      raw: { width: 300, height: 300, channels: 3 },
    })
      .png()
      .toBuffer();
    const corrupt = Buffer.from(noisy);
    for (let i = 200; i < 260; i++) corrupt[i] ^= 0x5a; // inside IDAT: header and IEND intact
    const bodies = [good, corrupt, good, good].map((img) => ({ input: { image: b64(img) } }));
    const ids = await Promise.all(bodies.map(async (b) => (await submit(b)).body.id as string));
    const jobs = await Promise.all(ids.map((id) => pollJob(hub.url, id)));
    expect(jobs.map((j) => j.status)).toEqual(['succeeded', 'failed', 'succeeded', 'succeeded']);
    expect(jobs[1].output).toMatchObject({ success: false, error_code: 1003, request_id: ids[1] });
    expect(hub.workers[0].child.exitCode).toBeNull();
  });
});

describe('catalog and operations', () => {
  it('lists the models with task, status, live workers and queue depth', async () => {
    const { body } = await getJson(`${hub.url}/v1/models`);
    const byName = Object.fromEntries(body.models.map((m: any) => [m.name, m]));
    expect(byName['text-direction']).toMatchObject({
      task: 'image-classification',
      status: 'ready',
      workers: 1,
      weights: 'real',
      queue: { waiting: 0 },
    });
    expect(byName.resnet50).toMatchObject({ status: 'ready', weights: 'test' });
    expect(byName.resnet50.description).toMatch(/TEST MODEL/);
  });

  it('documents one model and serves a sample input that the model accepts', async () => {
    const { body } = await getJson(`${hub.url}/v1/models/text-direction`);
    expect(body.batching).toEqual({ max_batch_size: 16, max_queue_delay_ms: 5 });
    expect(Object.keys(body.output.fields)).toEqual(['class', 'class_name', 'class_probs']);
    expect(body.input.schema.required).toEqual(['image']);
    const example = await getJson(`${hub.url}/v1/models/text-direction/example`);
    const r = await postJson(`${hub.url}/v1/models/text-direction/predict`, example.body);
    expect(r.body.class_name).toBe('180');
  });

  it('serves healthz, readyz and Prometheus metrics in both processes', async () => {
    expect((await getJson(`${hub.url}/healthz`)).status).toBe(200);
    expect((await getJson(`${hub.url}/readyz`)).body).toEqual({ status: 'ready' });
    const api = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    expect(metricValue(api, 'modelhub_jobs_submitted_total', { model: 'resnet50' })).toBeGreaterThan(0);
    expect(metricValue(api, 'modelhub_queue_jobs', { model: 'resnet50', state: 'completed' })).toBeGreaterThan(0);
    const worker = await (await fetch(`${hub.workers[0].metricsUrl}/metrics`)).text();
    expect(metricValue(worker, 'modelhub_worker_up', { device: 'cpu' })).toBe(1);
    expect(metricValue(worker, 'modelhub_queue_jobs', { model: 'text-direction', state: 'completed' })).toBeGreaterThan(
      0,
    );
    expect(metricValue(worker, 'modelhub_worker_jobs_total', { model: 'resnet50', outcome: 'failed' })).toBeGreaterThan(
      0,
    );
    for (const name of [
      'modelhub_queue_wait_seconds_count',
      'modelhub_preprocess_seconds_count',
      'modelhub_inference_seconds_count',
      'modelhub_job_duration_seconds_count',
      'modelhub_model_load_seconds',
    ]) {
      expect(metricValue(worker, name, { model: 'resnet50' })).toBeGreaterThan(0);
    }
  });
});
