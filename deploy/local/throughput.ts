/**
 * Smoke throughput through the whole hub: for every model the API lists as ready, submits
 * `--jobs` copies of its example input as jobs at once (so the worker forms full batches),
 * polls them to the end and prints one line per model. Exits 1 if a model is not served or a job
 * fails. Used by deploy/gpu-smoke.sh; works against any running hub:
 *   node dist/deploy/local/throughput.js --url http://127.0.0.1:8080 --jobs 64
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface ModelSummary {
  name: string;
  status: string;
  weights: string;
  workers: number;
}

interface JobView {
  id: string;
  status: string;
  output?: { error_code?: number; error_msg?: string };
  metrics?: { inference_ms: number; batch_size: number };
}

export interface ModelThroughput {
  model: string;
  weights: string;
  jobs: number;
  failed: number;
  seconds: number;
  jobsPerSecond: number;
  meanBatchSize: number;
  meanInferenceMs: number;
  firstError?: string;
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as T };
}

async function finished(url: string, id: string, deadline: number): Promise<JobView> {
  for (;;) {
    const { body } = await json<JobView>(`${url}/v1/jobs/${id}`);
    if (body.status !== 'queued' && body.status !== 'running') return body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${body.status} at the deadline`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Submits `jobs` copies of the model's example at once and waits for all of them. */
export async function measureModel(
  url: string,
  model: ModelSummary,
  jobs: number,
  timeoutMs: number,
): Promise<ModelThroughput> {
  const example = await json<Record<string, unknown>>(`${url}/v1/models/${model.name}/example`);
  if (example.status !== 200) throw new Error(`${model.name}: no example input (${example.status})`);
  const started = performance.now();
  const submitted = await Promise.all(
    Array.from({ length: jobs }, () =>
      json<{ id: string; error_msg?: string }>(`${url}/v1/models/${model.name}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: example.body }),
      }),
    ),
  );
  const refused = submitted.find((s) => s.status !== 202);
  if (refused) throw new Error(`${model.name}: a job was refused (${refused.status}): ${refused.body.error_msg}`);
  const deadline = Date.now() + timeoutMs;
  const views = await Promise.all(submitted.map((s) => finished(url, s.body.id, deadline)));
  const seconds = (performance.now() - started) / 1000;
  const ok = views.filter((v) => v.status === 'succeeded');
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const failedView = views.find((v) => v.status !== 'succeeded');
  return {
    model: model.name,
    weights: model.weights,
    jobs,
    failed: jobs - ok.length,
    seconds,
    jobsPerSecond: jobs / seconds,
    meanBatchSize: mean(ok.map((v) => v.metrics!.batch_size)),
    meanInferenceMs: mean(ok.map((v) => v.metrics!.inference_ms)),
    ...(failedView
      ? { firstError: `${failedView.status}: ${failedView.output?.error_code} ${failedView.output?.error_msg}` }
      : {}),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      jobs: { type: 'string', default: '64' },
      'timeout-s': { type: 'string', default: '300' },
      device: { type: 'string', default: '' },
    },
  });
  const url = values.url!.replace(/\/$/, '');
  const jobs = Number(values.jobs);
  const { body } = await json<{ models: ModelSummary[] }>(`${url}/v1/models`);
  const unavailable = body.models.filter((m) => m.status === 'unavailable').map((m) => m.name);
  const unserved = body.models.filter((m) => m.status === 'no_workers').map((m) => m.name);
  const ready = body.models.filter((m) => m.status === 'ready');
  if (unavailable.length) console.log(`not installed (skipped): ${unavailable.join(', ')}`);
  console.log(
    `${'model'.padEnd(20)} ${'weights'.padEnd(7)} ${'jobs'.padStart(5)} ${'failed'.padStart(6)} ${'seconds'.padStart(8)} ${'jobs/s'.padStart(8)} ${'batch'.padStart(6)} ${'infer ms'.padStart(9)}${values.device ? `  device ${values.device}` : ''}`,
  );
  let problems = unserved.length;
  for (const m of unserved) console.log(`${m.padEnd(20)} installed but no worker serves it`);
  for (const model of ready) {
    try {
      const r = await measureModel(url, model, jobs, Number(values['timeout-s']) * 1000);
      console.log(
        `${r.model.padEnd(20)} ${r.weights.padEnd(7)} ${String(r.jobs).padStart(5)} ${String(r.failed).padStart(6)} ${r.seconds.toFixed(2).padStart(8)} ${r.jobsPerSecond.toFixed(1).padStart(8)} ${r.meanBatchSize.toFixed(1).padStart(6)} ${r.meanInferenceMs.toFixed(1).padStart(9)}`,
      );
      if (r.failed) {
        problems++;
        console.log(`  first failure: ${r.firstError}`);
      }
    } catch (err) {
      problems++;
      console.log(`${model.name.padEnd(20)} FAILED: ${(err as Error).message}`);
    }
  }
  if (ready.length === 0) problems++;
  console.log(problems ? `smoke: ${problems} problem(s)` : `smoke: ${ready.length} model(s) answered every job`);
  process.exit(problems ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(`throughput failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
