/**
 * The hub against the engine it wraps, in one run and one process tree (`npm run bench`):
 *   raw onnxruntime (batch-1 latency, throughput by batch size) → the hub end to end (predict,
 *   job + poll, job + `Prefer: wait`) at each concurrency → batching off → a no-op model through
 *   the whole hub → the bare BullMQ round trip → one worker on all cores vs one per core.
 * For every load point: p50/p95/p99, throughput, CPU ms per job by process and thread (/proc),
 * Redis commands and Redis CPU µs per job (INFO commandstats on a private redis-server).
 *   npm run bench -- --model text-detection --concurrency 1,8,32 --seconds 2 --size 1280x960
 * Mixed nearby sizes, shape buckets on vs off, interleaved:
 *   npm run bench -- --model text-detection --sizes 320x160,300x180,330x185 --concurrency 8
 *     --ab MODELHUB_PAD_TO_BUCKET=off,manifest --skip raw,hub,nobatch,noop,bare,scale,batch
 * A DBNet model with --size and no --image gets a page of many lines of text at that size
 * (bench/lib/text-page.ts; --format png|jpeg|webp), and the raw phase reports CPU ms per page by
 * stage (decode+resize, inference, postprocess); the c=4 / raw ratio is the median of rounds that
 * alternate raw and hub windows (--page-rounds, 3), as the host's load moves between phases:
 *   npm run bench -- --model text-detection --size 1280x960
 * Tracing on (OpenTelemetry, sampler always_on, OTLP/HTTP to a sink here) vs off, interleaved:
 *   npm run bench -- --tracing --concurrency 32 --skip raw,hub,nobatch,noop,bare,scale,attack,batch
 * Coalesced predict (issue 22): each predict point runs against two APIs on the same worker,
 * coalescing on (MODELHUB_PREDICT_COALESCE_MS, default 1 ms) and off (0), alternated; each point
 * reports calls per queue entry (the API's modelhub_predict_entry_items). The all-models phase
 * (`allmodels`) loads every model in one worker and one API, as `npm start` does, and measures c=1.
 * The hub's processes (and the bare baseline's) run compiled, as production does: the bench builds
 * dist/ first (`--source`: TypeScript through tsx, no build). Each API is warmed at the top
 * concurrency for --prime seconds (8) before it is measured: a fresh one costs twice the CPU per call.
 * The c=32 / raw and Redis-per-call / bare targets are medians of --ratio-rounds (3) rounds that
 * alternate a raw onnxruntime window, hub predict at c=32 and the bare round trip at c=32. The c=1
 * checks against the bare round trip (overhead ≤ bare p50 + 2.5 ms; no-op p50 ≤ 1.25 × bare) are
 * medians of --c1-windows windows of calls sent in turn to the hub and the bare server.
 * Writes bench/results/<model>[-<size>].json and .png. Figures are ratios from one run: the
 * machine may be shared, so absolute numbers move between runs; the ratios are what to read.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { REPO_ROOT, loadConfig } from '../shared/config.js';
import { taskOptions } from '../shared/options/worker.js';
import { loadModelRepository } from '../shared/manifest.js';
import { modelSessionTuning, sessionOptionsFor } from '../worker/backend/device.js';
import { TASK_PIPELINES } from '../worker/tasks/index.js';
import { stackFeeds, type PreparedItem } from '../worker/tasks/task.js';
import { tensorBuffers } from '../worker/backend/tensor-buffers.js';
import { generateTestModels } from '../models/tools/generate-test-models.js';
import { writeChart, type Series } from './lib/chart.js';
import { runInterleaved, runLoad, percentile, type LoadResult, type Mode, type Target } from './lib/load.js';
import { benchModels } from './lib/models.js';
import {
  cpuBetween,
  freePort,
  httpReady,
  logReady,
  processProbe,
  selfProbe,
  snapshot,
  buildCompiled,
  hubNode,
  startService,
  stopAll,
  tsNode,
  workerProbes,
  type CpuProbe,
  type Service,
} from './lib/procs.js';
import { commandStats, statsBetween, type CommandStats } from './lib/redis-stats.js';
import { topSelfTime } from './lib/profile.js';
import { attackPhase, type AttackResult } from './lib/attack.js';
import { textPage, type PageFormat } from './lib/text-page.js';

const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'text-direction' },
    image: { type: 'string' },
    /** The text page's encoding (DBNet models with --size): png, jpeg or webp. */
    format: { type: 'string', default: 'png' },
    /** Resize the input image to WxH first (e.g. 1280x960 for a page-sized text-detection input). */
    size: { type: 'string' },
    /**
     * Or several sizes, WxH comma-separated: the clients send the image resized to each in turn
     * (nearby sizes: what shape buckets, manifest batching.pad_to_bucket, are for). Raw
     * onnxruntime and preprocessing figures use the first.
     */
    sizes: { type: 'string' },
    concurrency: { type: 'string', default: '1,8,32,64' },
    modes: { type: 'string', default: 'predict,poll,wait' },
    seconds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '0.5' },
    /**
     * Seconds of load at the top concurrency before an API's first measured point (and the bare
     * baseline's): a fresh API spends 1.0–1.1 ms of CPU per text-direction call, a warm one 0.5,
     * after 8–10 s of c=32 (V8's optimising tiers); production runs warm.
     */
    prime: { type: 'string', default: '8' },
    /** Run the hub's processes from TypeScript through tsx instead of compiled dist/ (no build). */
    source: { type: 'boolean', default: false },
    'poll-ms': { type: 'string', default: '20' },
    /**
     * A/B of one worker setting, interleaved in one run: "KEY=a,b" starts a worker with each
     * value (both alive, serving twin copies of the model) and alternates predict windows.
     */
    ab: { type: 'string' },
    'ab-rounds': { type: 'string', default: '3' },
    /**
     * DBNet pages: rounds of raw onnxruntime (its best options and batch) and hub predict at 4
     * clients, alternated window by window, for the c=4 / raw ratio (its median): on a shared
     * host the load moves between a raw phase and a hub phase minutes apart. 0: no rounds.
     */
    'page-rounds': { type: 'string', default: '3' },
    /**
     * Rounds of raw onnxruntime, hub predict at 32 clients and the bare round trip at 32 clients,
     * alternated window by window, for the c=32 / raw and Redis-per-call / bare targets (the
     * median of the rounds): the host's speed moves between phases minutes apart. 0: none
     * (the targets then use the c=32 point and the phases' own figures).
     */
    'ratio-rounds': { type: 'string', default: '3' },
    /**
     * Windows of c=1 predict sent in turn to the API with coalescing on and the one with it off
     * (bench/lib/load.ts runInterleaved), single-model and all-models phases, for the c=1 on / off
     * checks: the median of the windows' p50 ratios. A lone call takes the same path either way, and
     * one window of each after the other compared two moments of the host (rounds 0.78–1.38 here).
     * As many windows of calls sent in turn to the hub and the bare server, for the single-model
     * and no-op c=1 checks against the bare round trip.
     */
    'c1-windows': { type: 'string', default: '6' },
    /** Phases to skip: raw,hub,nobatch,noop,bare,scale,attack,batch,allmodels */
    skip: { type: 'string', default: '' },
    /** Write V8 CPU profiles of the API and worker (main phase) to bench/results/profiles/. */
    profile: { type: 'boolean', default: false },
    /** Items of the batch phase (bench/batch.ts: one batch vs the same items as single jobs). */
    'batch-items': { type: 'string', default: '10000' },
    /**
     * Tracing on vs off: a second API and worker (own key prefix) with OpenTelemetry on (sampler
     * always_on, OTLP/HTTP protobuf to a sink in this process), predict windows alternated with
     * the untraced pair, `ab-rounds` rounds at each concurrency.
     */
    tracing: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results') },
  },
});

const concurrencies = opts.concurrency!.split(',').map(Number);
const modes = opts.modes!.split(',') as Mode[];
const seconds = Number(opts.seconds);
const c1Windows = Math.max(1, Number(opts['c1-windows']));
const warmup = Number(opts.warmup);
const skip = new Set(opts.skip!.split(',').filter(Boolean));
const topC = Math.max(...concurrencies);
const cores = os.availableParallelism();
const primeSeconds = Number(opts.prime);
if (!opts.source) buildCompiled();

generateTestModels();
const config = loadConfig();
const entry = loadModelRepository(config).get(opts.model!);
if (!entry?.modelPath) throw new Error(`model ${opts.model} is not available`);
const manifest = entry.manifest;

// ---- the input: the model's example image (or --image), optionally resized ----
const sourceBytes = fs.readFileSync(opts.image ?? path.join(entry.dir, manifest.example ?? 'example.png'));
const sizeList = (opts.sizes ?? opts.size)?.split(',').filter(Boolean) ?? [];
// Text detection on pages: a page of many lines, not the example stretched.
const textPages = manifest.postprocess.decoder === 'dbnet' && !opts.image && sizeList.length > 0;
const images =
  sizeList.length === 0
    ? [sourceBytes]
    : await Promise.all(
        sizeList.map((size) => {
          const [w, h] = size.split('x').map(Number);
          if (textPages) return textPage(w, h, opts.format as PageFormat);
          return sharp(sourceBytes).resize(w, h, { fit: 'fill' }).png().toBuffer();
        }),
      );
const imageMeta = await sharp(images[0]).metadata();
const image = images[0].toString('base64');
const inputLabel =
  sizeList.length > 1
    ? `mixed ${sizeList.join(', ')} ${imageMeta.format}`
    : `${imageMeta.width}×${imageMeta.height} ${imageMeta.format}${textPages ? ' (page of text lines)' : ''}`;

const log = (s = '') => console.log(s);
const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');

// ---- 1. raw onnxruntime and preprocessing, in this process, before anything else runs ----
interface RawResult {
  /** The session options this was measured with. */
  options: ort.InferenceSession.SessionOptions;
  batch1P50Ms: number;
  byBatch: Record<number, number>;
  /** CPU ms per image (all of this process's threads) at each batch size. */
  cpuMsByBatch: Record<number, number>;
  best: number;
  bestBatch: number;
}

const pipeline = TASK_PIPELINES[manifest.task]!({
  entry,
  session: { inputNames: [], outputNames: [] },
  options: taskOptions(config),
});

/** The item's tensors handed back once done with, as the worker's runner does once its batch ran. */
function recycleItem(item: PreparedItem): void {
  for (const feed of Object.values(item.feeds)) tensorBuffers.recycleView(feed.data);
}

async function measurePreprocess(): Promise<{ p50Ms: number; cpuMs: number }> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) recycleItem(await pipeline.preprocess({ image }));
  const cpu0 = process.cpuUsage();
  const until = performance.now() + 1000;
  while (performance.now() < until || times.length < 5) {
    const t = performance.now();
    const item = await pipeline.preprocess({ image });
    times.push(performance.now() - t);
    recycleItem(item);
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return { p50Ms: percentile(times, 50), cpuMs: (cpu.user + cpu.system) / 1000 / times.length };
}

async function measureRaw(options: ort.InferenceSession.SessionOptions): Promise<RawResult> {
  const session = await ort.InferenceSession.create(entry!.modelPath!, options);
  const item = await pipeline.preprocess({ image });
  const collate = (n: number) => {
    const items = Array.from({ length: n }, () => item);
    return pipeline.collate ? pipeline.collate(items) : stackFeeds(items);
  };
  const one = collate(1);
  for (let i = 0; i < 5; i++) await session.run(one);
  const lat: number[] = [];
  const until = performance.now() + 1000;
  while (performance.now() < until || lat.length < 5) {
    const t = performance.now();
    await session.run(one);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const byBatch: Record<number, number> = {};
  const cpuMsByBatch: Record<number, number> = {};
  const batched = !pipeline.collate || manifest.batching.max_batch_size > 1;
  for (const bs of [1, 2, 4, 8, 16, 32].filter((b) => b <= manifest.batching.max_batch_size && (batched || b === 1))) {
    let feeds;
    try {
      feeds = collate(bs);
      await session.run(feeds);
    } catch {
      break; // an unbatched export takes one item per run
    }
    let n = 0;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    while (performance.now() - started < 1000 || n < 2 * bs) {
      await session.run(feeds);
      n += bs;
    }
    byBatch[bs] = n / ((performance.now() - started) / 1000);
    const cpu = process.cpuUsage(cpu0);
    cpuMsByBatch[bs] = (cpu.user + cpu.system) / 1000 / n;
  }
  await session.release();
  const [bestBatch, best] = Object.entries(byBatch).reduce((a, b) => (b[1] > a[1] ? b : a));
  return { options, batch1P50Ms: percentile(lat, 50), byBatch, cpuMsByBatch, best, bestBatch: Number(bestBatch) };
}

/** Raw onnxruntime images/s for `seconds` with these options and batch (one window of the page rounds). */
async function rawWindow(options: ort.InferenceSession.SessionOptions, batch: number): Promise<number> {
  const session = await ort.InferenceSession.create(entry!.modelPath!, options);
  const item = await pipeline.preprocess({ image });
  const items = Array.from({ length: batch }, () => item);
  const feeds = pipeline.collate ? pipeline.collate(items) : stackFeeds(items);
  for (let i = 0; i < 2; i++) await session.run(feeds);
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000 || n < 2 * batch) {
    await session.run(feeds);
    n += batch;
  }
  const rate = n / ((performance.now() - started) / 1000);
  await session.release();
  return rate;
}

/**
 * One alternated round: a raw onnxruntime window at the best options and batch, and the hub's
 * measurements, in an order reversed every other round so no step always follows the same one
 * (the host's load moves between windows). Returns raw images/s and each measurement's point.
 */
async function alternatedRound<P>(
  raw: RawResult,
  round: number,
  measurements: (() => Promise<P>)[],
): Promise<{ rawRate: number; points: P[] }> {
  let rawRate = NaN;
  const points: P[] = [];
  const steps = [
    async () => void (rawRate = await rawWindow(raw.options, raw.bestBatch)),
    ...measurements.map((m, k) => async () => void (points[k] = await m())),
  ];
  for (const step of round % 2 === 0 ? steps : [...steps].reverse()) await step();
  return { rawRate, points };
}

/** CPU ms per image of the task's postprocessing, on the outputs of one raw batch-1 run (as the worker does it, threads included). */
async function measurePostprocess(options: ort.InferenceSession.SessionOptions): Promise<number> {
  const session = await ort.InferenceSession.create(entry!.modelPath!, options);
  const item = await pipeline.preprocess({ image });
  const outputs = await session.run(pipeline.collate ? pipeline.collate([item]) : stackFeeds([item]));
  await session.release();
  for (let i = 0; i < 3; i++) await pipeline.postprocess(outputs, 0, item);
  let n = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < 1000 || n < 5) {
    await pipeline.postprocess(outputs, 0, item);
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000 / n;
}

// ---- the process tree ----
const models = await benchModels(opts.model!);
const redisPort = await freePort();
const redisUrl = `redis://127.0.0.1:${redisPort}`;
const prefix = 'bench';
const baseEnv = {
  REDIS_URL: redisUrl,
  MODELHUB_PREFIX: prefix,
  MODELHUB_MODELS_DIR: models.dir,
  LOG_LEVEL: 'warn',
  WEBHOOK_DELIVERY: 'off',
};
let redisServer!: Service;
let redis: Redis | undefined;
const profileDir = path.join(opts.out!, 'profiles');

async function startRedis(): Promise<void> {
  redisServer = await startService(
    'redis',
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    async () => {
      const r = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      r.on('error', () => undefined);
      try {
        await r.connect();
        await r.ping(); // resolves 'PONG' or rejects
        return true;
      } finally {
        r.disconnect();
      }
    },
  );
  redis = new Redis(redisUrl);
}

async function startApi(
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
  name = 'api',
): Promise<{ service: Service; url: string; metricsUrl: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { command, args } = hubNode('api/main.ts', nodeArgs, opts.source);
  // Its metrics listener too: a hub already running here holds the default port.
  const metricsPort = await freePort();
  const env = { ...baseEnv, PORT: String(port), API_METRICS_PORT: String(metricsPort), ...extraEnv };
  return {
    service: await startService(name, command, args, env, httpReady(`${url}/healthz`)),
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
  };
}

/** The API's predict entries so far (modelhub_predict_entry_items, all models): entries and the calls in them. */
async function entryTotals(metricsUrl: string | undefined): Promise<{ entries: number; calls: number }> {
  if (!metricsUrl) return { entries: 0, calls: 0 };
  const text = await (await fetch(metricsUrl)).text();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { entries: sum('modelhub_predict_entry_items_count'), calls: sum('modelhub_predict_entry_items_sum') };
}

/** An OTLP/HTTP sink: answers every export 200 and counts what arrived (a collector elsewhere would). */
async function startTraceSink(): Promise<{ url: string; requests: () => number; bytes: () => number; close(): void }> {
  const { createServer } = await import('node:http');
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      requests += 1;
      res.statusCode = 200;
      res.setHeader('content-type', 'application/x-protobuf');
      res.end();
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    bytes: () => bytes,
    close: () => server.close(),
  };
}

interface WorkerHandle {
  service: Service;
  sessionTids: number[];
}

async function startWorker(
  model: string,
  index: number,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  cpus?: string,
): Promise<WorkerHandle> {
  const port = await freePort();
  const { command, args } = hubNode('worker/main.ts', nodeArgs, opts.source);
  // As the fleet launcher starts it (libuv's pool sized to the worker's cores).
  const workerEnv = {
    UV_THREADPOOL_SIZE: String(cpus ? cpus.split(',').length : cores),
    ...baseEnv,
    METRICS_PORT: String(port),
    WORKER_INDEX: String(index),
    ...env,
  };
  const service = await startService(
    `worker-${index}`,
    command,
    [...args, '--device', 'cpu', '--models', model],
    workerEnv,
    httpReady(`http://127.0.0.1:${port}/healthz`),
    { cpus },
  );
  const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
    threads?: { sessions: Record<string, { host: number | null; pool: number[] } | null> };
  };
  const sessionTids = Object.values(health.threads?.sessions ?? {}).flatMap((s) =>
    s ? [...(s.host ? [s.host] : []), ...s.pool] : [],
  );
  return { service, sessionTids };
}

/** The bare BullMQ round trip (bench/bare): an Express server and a worker on the bench's Redis, primed. */
interface Bare {
  url: string;
  target: Target;
  probes: CpuProbe[];
  stop(): Promise<void>;
}
let bare: Bare | undefined;

async function startBare(): Promise<Bare> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const w = hubNode('bench/bare/worker.ts', [], opts.source);
  const worker = await startService(
    'bare-worker',
    w.command,
    w.args,
    { REDIS_URL: redisUrl },
    logReady('bare worker ready'),
  );
  const s = hubNode('bench/bare/server.ts', [], opts.source);
  const server = await startService(
    'bare-server',
    s.command,
    s.args,
    { REDIS_URL: redisUrl, PORT: String(port) },
    httpReady(`${url}/healthz`),
  );
  const target: Target = { mode: 'bare', path: '/predict', body: [JSON.stringify({ x: [0.1, 0.2, 0.3] })] };
  await prime(url, target);
  const probes = [
    processProbe('api', server.pid),
    processProbe('worker', worker.pid),
    processProbe('redis', redisServer.pid),
    selfProbe('bench clients'),
  ];
  return {
    url,
    target,
    probes,
    async stop() {
      await server.stop();
      await worker.stop();
    },
  };
}

interface Point extends LoadResult {
  label: string;
  mode: Mode;
  cpuMsPerJob: Record<string, number>;
  cpuMsPerJobTotal: number;
  redisCommandsPerJob: number;
  redisCommandUsPerJob: number;
  redisTopCommands: Record<string, number>;
  redisByCommandPerJob: Record<string, number>;
  /** Redis's own execution time per job by command (commandstats; a script's time includes its commands'), top 8. */
  redisTopUsPerJob: Record<string, number>;
  /** Predict calls per queue entry over the window (coalescing: > 1), when the API's metrics were read. */
  entryItems?: number;
}

const points: Point[] = [];

/** One ratio round (--ratio-rounds): the three windows' figures side by side. */
interface RatioRound {
  raw: number;
  hub: number;
  ratio: number;
  entryItems: number;
  /** Redis-server CPU ms per hub call, and per bare job. */
  redisPerCall: number;
  redisBare: number;
}

/** Redis-server CPU ms per job of a point (NaN for a point measured without a private Redis: no redis row). */
const redisCpuMsOf = (p: Point) => (p.cpuMsPerJob.redis as number | undefined) ?? NaN;

async function measure(
  label: string,
  mode: Mode,
  url: string,
  target: Target,
  concurrency: number,
  probes: CpuProbe[],
  apiMetrics?: string,
): Promise<Point> {
  let cpu0 = new Map<string, number>();
  let cpu1 = new Map<string, number>();
  let r0: CommandStats | null = null;
  let r1: CommandStats | null = null;
  let e0 = { entries: 0, calls: 0 };
  let e1 = { entries: 0, calls: 0 };
  const result = await runLoad(url, target, concurrency, seconds, warmup, {
    onMeasureStart: async () => {
      cpu0 = snapshot(probes);
      r0 = await commandStats(redis!);
      e0 = await entryTotals(apiMetrics);
    },
    onMeasureEnd: async () => {
      cpu1 = snapshot(probes);
      r1 = await commandStats(redis!);
      e1 = await entryTotals(apiMetrics);
    },
  });
  const cpu = cpuBetween(cpu0, cpu1);
  const jobs = Math.max(1, result.jobs);
  const rs = statsBetween(r0!, r1!);
  const cpuMsPerJob = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / jobs]));
  const top = Object.entries(rs.byCommand)
    .sort((a, b) => b[1].calls - a[1].calls)
    .slice(0, 8);
  const point: Point = {
    ...result,
    label,
    mode,
    cpuMsPerJob,
    cpuMsPerJobTotal: Object.values(cpuMsPerJob).reduce((a, b) => a + b, 0),
    redisCommandsPerJob: rs.calls / jobs,
    redisCommandUsPerJob: rs.usec / jobs,
    redisTopCommands: Object.fromEntries(top.map(([k, v]) => [k, Number((v.calls / jobs).toFixed(2))])),
    redisByCommandPerJob: Object.fromEntries(
      Object.entries(rs.byCommand).map(([k, v]) => [k, Number((v.calls / jobs).toFixed(3))]),
    ),
    redisTopUsPerJob: Object.fromEntries(
      Object.entries(rs.byCommand)
        .sort((a, b) => b[1].usec - a[1].usec)
        .slice(0, 8)
        .map(([k, v]) => [k, Number((v.usec / jobs).toFixed(1))]),
    ),
    ...(e1.entries > e0.entries ? { entryItems: (e1.calls - e0.calls) / (e1.entries - e0.entries) } : {}),
  };
  points.push(point);
  log(
    `${label.padEnd(28)} c=${String(concurrency).padStart(2)}  ${f(point.throughput).padStart(7)} jobs/s  p50 ${f(point.p50, 2).padStart(7)}  p95 ${f(point.p95, 2).padStart(7)}  p99 ${f(point.p99, 2).padStart(7)} ms` +
      `  CPU ${f(point.cpuMsPerJobTotal, 2)} ms/job  redis ${f(point.redisCommandsPerJob)} cmds ${f(point.redisCommandUsPerJob, 0)} µs ${f((point.cpuMsPerJob.redis as number | undefined) ?? NaN, 3)} CPU ms/job` +
      `${point.entryItems !== undefined ? `  ${f(point.entryItems, 2)} calls/entry` : ''}${result.failed ? `  FAILED ${result.failed}` : ''}`,
  );
  return point;
}

/**
 * Warms an API and the workers behind it (JIT, first batches, connections) before anything is
 * measured (--prime), at `concurrency` (default: the top concurrency, at least 8).
 */
async function prime(url: string, target: Target, concurrency = Math.max(8, topC)): Promise<void> {
  await runLoad(url, target, concurrency, primeSeconds, 0);
}

function hubProbes(api: Service, workers: WorkerHandle[]): CpuProbe[] {
  return [
    processProbe('api', api.pid),
    ...workers.flatMap((w, i) =>
      workerProbes(workers.length > 1 ? `worker ${i}` : 'worker', w.service.pid, w.sessionTids),
    ),
    processProbe('redis', redisServer.pid),
    selfProbe('bench clients'),
  ];
}

/** Clients cycle through the bodies (one per input size). */
function hubTarget(model: string, mode: Mode, bodies: string | string[]): Target {
  const list = [bodies].flat();
  return mode === 'predict'
    ? { mode, path: `/v1/models/${model}/predict`, body: list }
    : {
        mode,
        path: `/v1/models/${model}/jobs`,
        body: list.map((body) => JSON.stringify({ input: JSON.parse(body) })),
        pollMs: Number(opts['poll-ms']),
      };
}

const modelBody = images.map((bytes) => JSON.stringify({ image: bytes.toString('base64') }));
// Ctrl-C (or a kill) stops the bench's redis-server, API and workers too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void stopAll().finally(() => {
      models.cleanup();
      process.exit(130);
    });
  });
}
const results: Record<string, unknown> = {};
let exitCode = 0;

try {
  log(
    `ModelHub bench: ${opts.model} (${entry.weights} weights), input ${inputLabel}, cpu (${cores} cores), ${new Date().toISOString()}`,
  );
  log(`Shared machine: figures are from one run, side by side; compare ratios, not absolute numbers.`);
  log();
  let raw: RawResult | null = null;
  let stages:
    { decodeResizeCpuMs: number; inferenceCpuMs: number; inferenceBatch: number; postprocessCpuMs: number } | undefined;
  if (!skip.has('raw')) {
    // The engine at its best: onnxruntime's defaults (threads spin between runs), the worker's
    // own session options (the manifest's intra-op threads), and one intra-op thread (small
    // models run faster on one); the best figure of them is the reference.
    const { extra: _, ...spinning } = sessionOptionsFor({ kind: 'cpu' });
    // As the worker resolves it (MODELHUB_INTRA_OP_THREADS, then the manifest's, then all cores).
    const workerThreads =
      modelSessionTuning({ intraOpThreads: loadConfig().MODELHUB_INTRA_OP_THREADS }, manifest.session.intra_op_threads)
        .intraOpThreads || undefined;
    const variants: Record<string, RawResult> = {
      [`onnxruntime defaults (spinning), intra-op threads = ${cores}`]: await measureRaw(spinning),
      [`the worker's options, intra-op threads = ${workerThreads ?? cores}`]: await measureRaw(
        sessionOptionsFor({ kind: 'cpu' }, { intraOpThreads: workerThreads }),
      ),
    };
    if (workerThreads !== 1 && cores > 1)
      variants['spinning off, intra-op threads = 1'] = await measureRaw(
        sessionOptionsFor({ kind: 'cpu' }, { intraOpThreads: 1 }),
      );
    for (const [name, r] of Object.entries(variants)) {
      log(`raw onnxruntime, ${name}, same input tensor: batch-1 p50 ${f(r.batch1P50Ms, 2)} ms`);
      log(
        `  images/s by batch size: ${Object.entries(r.byBatch)
          .map(([b, v]) => `${b}: ${f(v)}`)
          .join(', ')}  → best ${f(r.best)} at batch ${r.bestBatch} (${f(1000 / r.best, 2)} ms per image)`,
      );
    }
    const all = Object.values(variants);
    const fastest = all.reduce((a, b) => (b.best > a.best ? b : a));
    raw = { ...fastest, batch1P50Ms: Math.min(...all.map((r) => r.batch1P50Ms)) };
    const pre = await measurePreprocess();
    const postCpuMs = await measurePostprocess(sessionOptionsFor({ kind: 'cpu' }, { intraOpThreads: workerThreads }));
    results.raw = { reference: raw, variants };
    results.preprocess = pre;
    stages = {
      decodeResizeCpuMs: pre.cpuMs,
      inferenceCpuMs: raw.cpuMsByBatch[raw.bestBatch],
      inferenceBatch: raw.bestBatch,
      postprocessCpuMs: postCpuMs,
    };
    results.stages = stages;
    log(`reference: batch-1 p50 ${f(raw.batch1P50Ms, 2)} ms, best ${f(raw.best)} images/s`);
    log(
      `preprocessing in-process (decode + resize + normalise): p50 ${f(pre.p50Ms, 2)} ms, ${f(pre.cpuMs, 2)} ms CPU per image`,
    );
    log(
      `CPU ms per image by stage: decode+resize ${f(stages.decodeResizeCpuMs, 1)} · inference ${f(stages.inferenceCpuMs, 1)} (batch ${stages.inferenceBatch}, all session threads) · postprocess ${f(stages.postprocessCpuMs, 1)}; decode+resize+postprocess ${f(stages.decodeResizeCpuMs + stages.postprocessCpuMs, 1)}`,
    );
    log();
  }

  await startRedis();
  // One folder per process: every thread (tsx's loader thread too) writes its own profile; the
  // event loop's is the largest.
  const profArgs = (name: string) =>
    opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];
  if (opts.profile) fs.rmSync(profileDir, { recursive: true, force: true });
  const api = await startApi(profArgs('api'));
  // The same hub with coalescing off: its own API on the same Redis and workers.
  const apiOff = await startApi([], { MODELHUB_PREDICT_COALESCE_MS: '0' }, 'api-uncoalesced');
  /** Predict at c through both APIs, alternating which goes first (neither always runs on a machine the other warmed). */
  const onAndOff = async (label: string, target: Target, c: number, workers: WorkerHandle[], round = c) => {
    const run = (on: boolean) =>
      measure(
        on ? label : `${label}, coalescing off`,
        'predict',
        on ? api.url : apiOff.url,
        target,
        c,
        hubProbes(on ? api.service : apiOff.service, workers),
        on ? api.metricsUrl : apiOff.metricsUrl,
      );
    const first = round % 2 === 0;
    const a = await run(first);
    const b = await run(!first);
    return first ? a : b;
  };
  /** Each c=1 on / off check's windows (runInterleaved), by label: p50 with coalescing on / off. */
  const c1OnOff = new Map<string, number[]>();
  const interleavedOnOff = async (label: string, urls: [on: string, off: string], target: Target) => {
    const ratios: number[] = [];
    for (let w = 0; w < c1Windows; w++) {
      const r = await runInterleaved(urls, target, seconds, warmup);
      ratios.push(r.p50[0] / r.p50[1]);
      log(
        `${label}, c=1 in turn to coalescing on and off: p50 ${f(r.p50[0], 2)} / ${f(r.p50[1], 2)} ms (${r.calls.join(' / ')} calls${r.failed > 0 ? `, ${r.failed} failed` : ''}) → ${f(r.p50[0] / r.p50[1], 3)}`,
      );
    }
    c1OnOff.set(label, ratios);
    results.c1OnOff = Object.fromEntries(c1OnOff);
  };
  /**
   * The c=1 checks against the bare round trip, by label: each window's [hub p50, bare p50], the
   * hub's calls and the bare server's sent in turn (phases minutes apart compared the host's moments).
   */
  const c1AgainstBare = new Map<string, [number, number][]>();
  const interleavedWithBare = async (label: string, url: string, target: Target) => {
    if (skip.has('bare')) return;
    const b = (bare ??= await startBare());
    const windows: [number, number][] = [];
    for (let w = 0; w < c1Windows; w++) {
      const r = await runInterleaved([url, b.url], [target, b.target], seconds, warmup);
      windows.push([r.p50[0], r.p50[1]]);
      log(
        `${label}, c=1 in turn with the bare round trip: p50 ${f(r.p50[0], 2)} / ${f(r.p50[1], 2)} ms (${r.calls.join(' / ')} calls${r.failed > 0 ? `, ${r.failed} failed` : ''})`,
      );
    }
    c1AgainstBare.set(label, windows);
    results.c1AgainstBare = Object.fromEntries(c1AgainstBare);
  };

  let batchingOn: Point | undefined;
  /** All models loaded: the model's predict at allModelsC / raw best batch, each alternated round. */
  const allModelsRatios: number[] = [];
  const allModelsC = textPages ? 4 : 32;
  const pageRounds: { raw: number; hub: number; ratio: number }[] = [];
  const ratioRounds: RatioRound[] = [];
  if (!skip.has('hub')) {
    const worker = await startWorker(opts.model!, 0, {}, profArgs('worker'));
    const probes = hubProbes(api.service, [worker]);
    await prime(api.url, hubTarget(opts.model!, 'predict', modelBody));
    await prime(apiOff.url, hubTarget(opts.model!, 'predict', modelBody));
    for (const mode of modes)
      for (const c of concurrencies) {
        const p =
          mode === 'predict'
            ? await onAndOff('hub predict', hubTarget(opts.model!, mode, modelBody), c, [worker])
            : await measure(`hub ${mode}`, mode, api.url, hubTarget(opts.model!, mode, modelBody), c, probes);
        if (mode === 'predict' && c === topC) batchingOn = p;
      }
    // A second round at c=1, in the other order: the better p50 of each is shown (the check itself
    // is on calls sent in turn to both APIs, where the host's moments cancel).
    if (modes.includes('predict') && concurrencies.includes(1)) {
      await onAndOff('hub predict', hubTarget(opts.model!, 'predict', modelBody), 1, [worker], 2);
      await interleavedOnOff('hub predict', [api.url, apiOff.url], hubTarget(opts.model!, 'predict', modelBody));
      await interleavedWithBare('hub predict', api.url, hubTarget(opts.model!, 'predict', modelBody));
    }
    const rounds = Number(opts['page-rounds']);
    if (textPages && raw && rounds > 0) {
      log(`page rounds: raw (best options, batch ${raw.bestBatch}) and hub predict at c=4, alternated`);
      for (let round = 0; round < rounds; round++) {
        const rawRate = await rawWindow(raw.options, raw.bestBatch);
        const hub = await measure(
          `hub predict, page round`,
          'predict',
          api.url,
          hubTarget(opts.model!, 'predict', modelBody),
          4,
          probes,
        );
        pageRounds.push({ raw: rawRate, hub: hub.throughput, ratio: hub.throughput / rawRate });
        log(
          `  round ${round + 1}: raw ${f(rawRate, 2)} images/s, hub ${f(hub.throughput, 2)} jobs/s → ${f(hub.throughput / rawRate, 2)}`,
        );
      }
      results.pageRounds = pageRounds;
    }
    const ratioRoundCount = Number(opts['ratio-rounds']);
    if (!textPages && raw && concurrencies.includes(32) && modes.includes('predict') && ratioRoundCount > 0) {
      if (!skip.has('bare')) bare ??= await startBare();
      log(
        `ratio rounds: raw (best options, batch ${raw.bestBatch}), hub predict at c=32${bare ? ' and the bare round trip at c=32' : ''}, alternated`,
      );
      for (let round = 0; round < ratioRoundCount; round++) {
        const {
          rawRate,
          points: [hub, baseline],
        } = await alternatedRound(raw, round, [
          () =>
            measure(
              'hub predict, ratio round',
              'predict',
              api.url,
              hubTarget(opts.model!, 'predict', modelBody),
              32,
              probes,
              api.metricsUrl,
            ),
          async () =>
            bare
              ? await measure('bare BullMQ round trip, ratio round', 'bare', bare.url, bare.target, 32, bare.probes)
              : undefined,
        ]);
        const r: RatioRound = {
          raw: rawRate,
          hub: hub!.throughput,
          ratio: hub!.throughput / rawRate,
          entryItems: hub!.entryItems ?? NaN,
          redisPerCall: redisCpuMsOf(hub!),
          redisBare: baseline ? redisCpuMsOf(baseline) : NaN,
        };
        ratioRounds.push(r);
        log(
          `  round ${round + 1}: raw ${f(r.raw, 1)} images/s, hub ${f(r.hub, 1)} jobs/s → ${f(r.ratio, 2)}; Redis CPU per call ${f(r.redisPerCall, 3)} ms / bare ${f(r.redisBare, 3)} → ${f(r.redisPerCall / r.redisBare, 2)}`,
        );
      }
      results.ratioRounds = ratioRounds;
    }
    await worker.service.stop();
    log();
  }

  if (opts.ab) {
    const [key, list] = opts.ab.split('=');
    const [a, b] = list.split(',');
    const workers = [await startWorker(opts.model!, 0, { [key]: a }), await startWorker(models.twin, 1, { [key]: b })];
    const names = [opts.model!, models.twin];
    for (const n of names) await prime(api.url, hubTarget(n, 'predict', modelBody));
    const ratios: Record<number, number[]> = {};
    for (let round = 0; round < Number(opts['ab-rounds']); round++) {
      for (const c of concurrencies) {
        const [pa, pb] = [
          await measure(
            `ab ${key}=${a}`,
            'predict',
            api.url,
            hubTarget(names[0], 'predict', modelBody),
            c,
            hubProbes(api.service, [workers[0]]),
          ),
          await measure(
            `ab ${key}=${b}`,
            'predict',
            api.url,
            hubTarget(names[1], 'predict', modelBody),
            c,
            hubProbes(api.service, [workers[1]]),
          ),
        ];
        (ratios[c] ??= []).push(pb.throughput / pa.throughput);
      }
    }
    for (const [c, r] of Object.entries(ratios))
      log(
        `A/B ${key}: ${b} / ${a} throughput at c=${c}: ${r.map((x) => f(x, 2)).join(', ')} (median ${f(r.sort((x, y) => x - y)[Math.floor(r.length / 2)], 2)})`,
      );
    for (const w of workers) await w.service.stop();
    log();
  }

  if (opts.tracing) {
    // Two hubs side by side on one Redis (own key prefixes), the same model: one traced, one not.
    const sink = await startTraceSink();
    const traced = {
      MODELHUB_PREFIX: `${prefix}-traced`,
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: process.env.BENCH_TRACES_SAMPLER ?? 'always_on',
    };
    const tracedApi = await startApi([], traced, 'api-traced');
    const workers = [await startWorker(opts.model!, 0), await startWorker(opts.model!, 1, traced)];
    const urls = [api.url, tracedApi.url];
    for (const u of urls) await prime(u, hubTarget(opts.model!, 'predict', modelBody));
    const ratios: Record<number, number[]> = {};
    // CPU per job, all processes together (on / off): steadier than throughput on a shared machine.
    const cpuRatios: Record<number, number[]> = {};
    const target = hubTarget(opts.model!, 'predict', modelBody);
    const run = (on: boolean, c: number) =>
      measure(
        `tracing ${on ? 'on' : 'off'}`,
        'predict',
        urls[on ? 1 : 0],
        target,
        c,
        hubProbes(on ? tracedApi.service : api.service, [workers[on ? 1 : 0]]),
      );
    const exported0 = { requests: sink.requests(), bytes: sink.bytes() };
    for (let round = 0; round < Number(opts['ab-rounds']); round++) {
      for (const c of concurrencies) {
        // Alternating which goes first, so neither always runs on a machine warmed (or loaded) by the other.
        const first = round % 2 === 0;
        const a = await run(!first, c);
        const b = await run(first, c);
        const [off, on] = first ? [a, b] : [b, a];
        (ratios[c] ??= []).push(on.throughput / off.throughput);
        (cpuRatios[c] ??= []).push(on.cpuMsPerJobTotal / off.cpuMsPerJobTotal);
      }
    }
    const median = (r: number[]) => [...r].sort((x, y) => x - y)[Math.floor(r.length / 2)];
    for (const [c, r] of Object.entries(ratios))
      log(
        `tracing on / off throughput at c=${c}: ${r.map((x) => f(x, 3)).join(', ')} (median ${f(median(r), 3)}, cost ${f((1 - median(r)) * 100, 1)} %)` +
          `; CPU per job on / off: median ${f(median(cpuRatios[Number(c)]), 3)}`,
      );
    log(
      `  the sink received ${sink.requests() - exported0.requests} OTLP requests, ${f((sink.bytes() - exported0.bytes) / 1024 / 1024, 1)} MiB`,
    );
    results.tracing = Object.fromEntries(
      Object.entries(ratios).map(([c, r]) => [
        c,
        { ratios: r, median: median(r), cpuRatios: cpuRatios[Number(c)], cpuMedian: median(cpuRatios[Number(c)]) },
      ]),
    );
    for (const w of workers) await w.service.stop();
    await tracedApi.service.stop();
    sink.close();
    log();
  }

  if (!skip.has('nobatch')) {
    const worker = await startWorker(models.nobatch, 0);
    await prime(api.url, hubTarget(models.nobatch, 'predict', modelBody));
    await measure(
      'hub predict, batching off',
      'predict',
      api.url,
      hubTarget(models.nobatch, 'predict', modelBody),
      topC,
      hubProbes(api.service, [worker]),
    );
    await worker.service.stop();
    log();
  }

  if (!skip.has('noop')) {
    const worker = await startWorker(models.noop, 0);
    const target = hubTarget(models.noop, 'predict', JSON.stringify({ image: models.noopImage }));
    await prime(api.url, target);
    await prime(apiOff.url, target);
    for (const c of concurrencies) await onAndOff('no-op model, hub predict', target, c, [worker]);
    if (concurrencies.includes(1)) await interleavedWithBare('no-op model, hub predict', api.url, target);
    await worker.service.stop();
    log();
  }

  if (!skip.has('scale')) {
    // Same load (predict at the top concurrency): one worker with every core vs one worker per core.
    const one = await startWorker(opts.model!, 0, { MODELHUB_INTRA_OP_THREADS: String(cores) });
    await prime(api.url, hubTarget(opts.model!, 'predict', modelBody));
    await measure(
      `scale: 1 worker × ${cores} cores`,
      'predict',
      api.url,
      hubTarget(opts.model!, 'predict', modelBody),
      topC,
      hubProbes(api.service, [one]),
    );
    await one.service.stop();
    const many: WorkerHandle[] = [];
    for (let i = 0; i < cores; i++)
      many.push(await startWorker(opts.model!, i, { MODELHUB_INTRA_OP_THREADS: '1' }, [], String(i)));
    await prime(api.url, hubTarget(opts.model!, 'predict', modelBody));
    await measure(
      `scale: ${cores} workers × 1 core`,
      'predict',
      api.url,
      hubTarget(opts.model!, 'predict', modelBody),
      topC,
      hubProbes(api.service, many),
    );
    for (const w of many) await w.service.stop();
    log();
  }
  await api.service.stop();
  await apiOff.service.stop();

  // As a new user's `npm start` runs it: every model in one worker and one API (12 BullMQ
  // consumers per lane on one event loop), c=1 on the model under test, coalescing on and off.
  if (!skip.has('allmodels')) {
    const all = { MODELHUB_MODELS_DIR: path.join(REPO_ROOT, 'models'), MODELHUB_PREFIX: `${prefix}-all` };
    const allApi = await startApi([], all, 'api-all');
    const allOff = await startApi([], { ...all, MODELHUB_PREDICT_COALESCE_MS: '0' }, 'api-all-uncoalesced');
    const port = await freePort();
    const { command, args } = hubNode('worker/main.ts', [], opts.source);
    const allWorker = await startService(
      'worker-all',
      command,
      [...args, '--device', 'cpu', '--models', 'all'],
      { UV_THREADPOOL_SIZE: String(cores), ...baseEnv, ...all, METRICS_PORT: String(port), WORKER_INDEX: '0' },
      httpReady(`http://127.0.0.1:${port}/healthz`),
    );
    const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { models: string[] };
    log(`all models loaded in one worker: ${health.models.length} (${health.models.join(', ')})`);
    const target = hubTarget(opts.model!, 'predict', modelBody);
    const allProbes = (apiService: Service) => [
      processProbe('api', apiService.pid),
      processProbe('worker', allWorker.pid),
      processProbe('redis', redisServer.pid),
      selfProbe('bench clients'),
    ];
    // At c=1, the load measured: at the top concurrency the coalescing API would warm its entry
    // path, not the lone call's, and the other API the lone call's (up to 0.6 ms of API CPU per
    // call apart at c=1 in the first windows after).
    await prime(allApi.url, target, 1);
    await prime(allOff.url, target, 1);
    for (let round = 0; round < 2; round++)
      for (const on of round % 2 === 0 ? [true, false] : [false, true])
        await measure(
          `all models, hub predict${on ? '' : ', coalescing off'}`,
          'predict',
          on ? allApi.url : allOff.url,
          target,
          1,
          allProbes(on ? allApi.service : allOff.service),
          on ? allApi.metricsUrl : allOff.metricsUrl,
        );
    await interleavedOnOff('all models, hub predict', [allApi.url, allOff.url], target);
    // The model busy with every model loaded (c=32; DBNet pages c=4), against raw onnxruntime in
    // alternated windows (as the ratio rounds): what a new user's `npm start` gives a busy model.
    const allRoundCount = Number(opts['ratio-rounds']);
    if (raw && concurrencies.includes(allModelsC) && allRoundCount > 0) {
      await prime(allApi.url, target);
      log(
        `all models, ratio rounds: raw (best options, batch ${raw.bestBatch}) and hub predict at c=${allModelsC}, alternated`,
      );
      for (let round = 0; round < allRoundCount; round++) {
        const {
          rawRate,
          points: [hub],
        } = await alternatedRound(raw, round, [
          () =>
            measure(
              'all models, hub predict, ratio round',
              'predict',
              allApi.url,
              target,
              allModelsC,
              allProbes(allApi.service),
              allApi.metricsUrl,
            ),
        ]);
        allModelsRatios.push(hub!.throughput / rawRate);
        log(
          `  round ${round + 1}: raw ${f(rawRate, 1)} images/s, hub ${f(hub!.throughput, 1)} jobs/s → ${f(hub!.throughput / rawRate, 2)}`,
        );
      }
      results.allModelsRatioRounds = allModelsRatios;
    }
    await allWorker.stop();
    await allApi.service.stop();
    await allOff.service.stop();
    log();
  }

  if (!skip.has('bare')) {
    const b = (bare ??= await startBare());
    for (const c of concurrencies) await measure('bare BullMQ round trip', 'bare', b.url, b.target, c, b.probes);
    log();
  }
  await bare?.stop();

  // Tenant B's latency while tenant A attacks the same hub (issue #11): its own API and worker.
  let attack: AttackResult | undefined;
  if (!skip.has('attack')) {
    // A longer window than the other points: A's first burst (several 9-megapixel decodes at once)
    // dominates a 2 s window, and the phase is about the steady state a neighbour lives in.
    attack = await attackPhase({
      model: opts.model!,
      bodies: modelBody,
      baseEnv,
      seconds: Math.max(6, seconds),
      warmup,
      log,
      source: opts.source,
    });
    results.attack = attack;
    log();
  }

  // ---- summary: the issue's targets as ratios of this run ----
  const at = (label: string, c: number) => points.find((p) => p.label === label && p.concurrency === c);
  const bare1 = at('bare BullMQ round trip', 1);
  const bareTop = at('bare BullMQ round trip', topC);
  const noop1 = at('no-op model, hub predict', 1);
  const noopTop = at('no-op model, hub predict', topC);
  const predict1 = at('hub predict', 1);
  const predict32 = at('hub predict', 32);
  const nobatch = at('hub predict, batching off', topC);
  const targets: { what: string; value: string; target: string; met: boolean | null }[] = [];
  const off = (label: string, c: number) => at(`${label}, coalescing off`, c);
  /** The better (lower) p50 of a label's rounds at c. */
  const bestP50 = (label: string, c: number) =>
    Math.min(...points.filter((p) => p.label === label && p.concurrency === c).map((p) => p.p50));
  /** The c=1 on / off check: the median of its interleaved windows, with the better p50 of each side's windows shown. */
  const addC1OnOff = (what: string, label: string) => {
    const ratios = c1OnOff.get(label);
    if (!ratios?.length) return;
    add(
      `${what}, median of ${ratios.length} windows of calls sent in turn to both (${ratios.map((r) => f(r, 2)).join(', ')}; better p50 of each side's own windows: ${f(bestP50(label, 1) / bestP50(`${label}, coalescing off`, 1), 2)})`,
      median(ratios),
      '≤ 1.05 (not worse)',
      (v) => v <= 1.05,
    );
  };
  const add = (what: string, v: number | undefined, target: string, ok: (v: number) => boolean | null, digits = 2) =>
    targets.push({
      what,
      value: v === undefined || !Number.isFinite(v) ? 'n/a' : f(v, digits),
      target,
      met: v === undefined || !Number.isFinite(v) ? null : ok(v),
    });
  const median = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  // The c=1 checks against the bare round trip: on calls sent in turn when the phase ran them (the
  // median of the windows), else on the two phases' own points, minutes apart.
  const inTurn = (label: string) => c1AgainstBare.get(label)?.filter(([hub, b]) => Number.isFinite(hub + b));
  const phasesApart = (hub: Point | undefined, value: (hub: Point, bare: Point) => number) =>
    hub && bare1 ? `; the phases minutes apart: ${f(value(hub, bare1), 2)}` : '';
  const predictInTurn = inTurn('hub predict');
  if (raw && predictInTurn?.length) {
    const margins = predictInTurn.map(([hub, b]) => hub - raw.batch1P50Ms - b);
    add(
      `overhead at c=1 (predict p50 − raw batch-1 p50) − bare p50, ms, median of ${margins.length} windows of calls sent in turn to the hub and the bare round trip (${margins.map((m) => f(m, 2)).join(', ')}${phasesApart(predict1, (p, b) => p.p50 - raw.batch1P50Ms - b.p50)})`,
      median(margins),
      '≤ 2.5',
      (v) => v <= 2.5,
    );
  } else if (predict1 && raw && bare1) {
    const overhead = predict1.p50 - raw.batch1P50Ms;
    add(
      `overhead at c=1 (predict p50 − raw batch-1 p50), ms`,
      overhead,
      `≤ bare p50 + 2.5 = ${f(bare1.p50 + 2.5, 2)}`,
      (v) => v <= bare1.p50 + 2.5,
    );
  }
  if (noopTop && bareTop)
    add(`no-op throughput / bare at c=${topC}`, noopTop.throughput / bareTop.throughput, '≥ 0.8', (v) => v >= 0.8);
  const noopInTurn = inTurn('no-op model, hub predict');
  if (noopInTurn?.length) {
    const ratios = noopInTurn.map(([hub, b]) => hub / b);
    add(
      `no-op p50 / bare p50 at c=1, median of ${ratios.length} windows of calls sent in turn (${ratios.map((r) => f(r, 2)).join(', ')}${phasesApart(noop1, (p, b) => p.p50 / b.p50)})`,
      median(ratios),
      '≤ 1.25',
      (v) => v <= 1.25,
    );
  } else if (noop1 && bare1) add('no-op p50 / bare p50 at c=1', noop1.p50 / bare1.p50, '≤ 1.25', (v) => v <= 1.25);
  const c32Goal = opts.model === 'text-detection' ? (opts.size ? 0.9 : 0.75) : 0.4;
  const c32Target = `≥ ${c32Goal}${opts.model === 'text-detection' ? (opts.size ? ' (page)' : ' (small)') : ''}`;
  if (ratioRounds.length > 0) {
    add(
      `${opts.model} predict at c=32 / raw best batch, median of ${ratioRounds.length} alternated rounds (${ratioRounds.map((r) => f(r.ratio, 2)).join(', ')})`,
      median(ratioRounds.map((r) => r.ratio)),
      c32Target,
      (v) => v >= c32Goal,
    );
    if (predict32 && raw)
      add(`  the c=32 point / the raw phase (minutes apart)`, predict32.throughput / raw.best, 'shown', () => null);
  } else if (predict32 && raw)
    add(
      `${opts.model} predict at c=32 / raw best batch`,
      predict32.throughput / raw.best,
      c32Target,
      (v) => v >= c32Goal,
    );
  const predict32Off = off('hub predict', 32);
  if (predict32Off && raw) add(`  the same, coalescing off`, predict32Off.throughput / raw.best, 'shown', () => null);
  if (predict32) add(`${opts.model} predict calls per queue entry at c=32`, predict32.entryItems, '> 1', (v) => v > 1);
  if (predict32 && predict32Off) {
    add(
      `${opts.model} predict p99 at c=32, coalescing on, ms`,
      predict32.p99,
      `≤ off: ${f(predict32Off.p99, 2)}`,
      (v) => v <= predict32Off.p99,
    );
  }
  const allOn = bestP50('all models, hub predict', 1);
  if (Number.isFinite(allOn) && raw && bare1)
    add(
      'all models loaded: overhead at c=1 (predict p50 − raw batch-1 p50), ms',
      allOn - raw.batch1P50Ms,
      `≤ bare p50 + 4 = ${f(bare1.p50 + 4, 2)}`,
      (v) => v <= bare1.p50 + 4,
    );
  addC1OnOff('all models loaded: c=1 p50 coalescing on / off', 'all models, hub predict');
  // Issue 22's goal for c=32 holds with every model loaded too; DBNet pages' c=4 is shown.
  if (allModelsRatios.length > 0)
    add(
      `all models loaded: ${opts.model} predict at c=${allModelsC} / raw best batch, median of ${allModelsRatios.length} alternated rounds (${allModelsRatios.map((r) => f(r, 2)).join(', ')})`,
      median(allModelsRatios),
      textPages ? 'shown' : `≥ ${c32Goal}`,
      (v) => (textPages ? null : v >= c32Goal),
    );
  addC1OnOff('c=1 predict p50 coalescing on / off', 'hub predict');
  const redisRounds = ratioRounds.filter((r) => Number.isFinite(r.redisBare));
  if (redisRounds.length > 0) {
    const items = median(redisRounds.map((r) => r.entryItems));
    add(
      `${opts.model} Redis CPU per call / bare per job at c=32, median of ${redisRounds.length} alternated rounds (${redisRounds.map((r) => f(r.redisPerCall / r.redisBare, 2)).join(', ')}; ${f(items, 2)} calls/entry)`,
      median(redisRounds.map((r) => r.redisPerCall / r.redisBare)),
      '≤ 0.5 with calls/entry > 1',
      (v) => v <= 0.5 && items > 1,
    );
  }
  for (const [name, p] of [
    ['no-op', noopTop],
    [opts.model!, redisRounds.length > 0 ? undefined : at('hub predict', 32)],
  ] as const)
    if (p && bareTop && p.entryItems !== undefined)
      add(
        `${name} Redis CPU per call / bare per job at c=${p.concurrency} (redis-server process; ${f(p.entryItems, 2)} calls/entry)`,
        redisCpuMsOf(p) / redisCpuMsOf(at('bare BullMQ round trip', p.concurrency) ?? bareTop),
        '≤ 0.5 with calls/entry > 1',
        (v) => v <= 0.5 && p.entryItems! > 1,
      );
  const predict4 = at('hub predict', 4);
  if (pageRounds.length > 0)
    add(
      `${opts.model} predict at c=4 / raw best batch (page), median of ${pageRounds.length} alternated rounds (${pageRounds.map((r) => f(r.ratio, 2)).join(', ')})`,
      percentile(
        pageRounds.map((r) => r.ratio).sort((a, b) => a - b),
        50,
      ),
      '≥ 0.8',
      (v) => v >= 0.8,
    );
  else if (textPages && predict4 && raw)
    add(
      `${opts.model} predict at c=4 / raw best batch (page)`,
      predict4.throughput / raw.best,
      '≥ 0.8',
      (v) => v >= 0.8,
    );
  if (textPages && stages)
    add(
      'decode+resize+postprocess CPU ms per page (in-process)',
      stages.decodeResizeCpuMs + stages.postprocessCpuMs,
      '≤ 40',
      (v) => v <= 40,
      1,
    );
  if (batchingOn && nobatch)
    add(`batching on / off at c=${topC}`, batchingOn.throughput / nobatch.throughput, '≥ 1.2', (v) => v >= 1.2);
  for (const [name, p] of [
    ['no-op', noopTop],
    [opts.model!, batchingOn],
  ] as const) {
    if (p && bareTop) {
      add(
        `${name} Redis commands per job / bare at c=${topC}`,
        p.redisCommandsPerJob / bareTop.redisCommandsPerJob,
        '≤ 1.25',
        (v) => v <= 1.25,
      );
      // The Redis process's own CPU (/proc): what a shard spends per job, network I/O included.
      add(
        `${name} Redis CPU per job / bare at c=${topC} (redis-server process)`,
        redisCpuMsOf(p) / redisCpuMsOf(bareTop),
        '≤ 1.25',
        (v) => v <= 1.25,
      );
      // INFO commandstats counts a script's time in EVALSHA and again in each command it runs:
      // shown (the issue measured this way), not judged.
      add(
        `${name} Redis command µs per job / bare at c=${topC} (commandstats; script time counted twice)`,
        p.redisCommandUsPerJob / bareTop.redisCommandUsPerJob,
        'shown, not judged',
        () => null,
      );
    }
  }
  if (attack) {
    add(
      `tenant B predict p50 under attack / idle (c=${attack.concurrency})`,
      attack.p50Ratio,
      'lower is better',
      () => null,
    );
    add(
      `tenant B predict p95 under attack / idle (c=${attack.concurrency})`,
      attack.p95Ratio,
      'lower is better',
      () => null,
    );
  }
  const scaleOne = points.find((p) => p.label.startsWith('scale: 1 worker'));
  const scaleMany = points.find((p) => p.label.startsWith(`scale: ${cores} workers`));
  if (scaleOne && scaleMany)
    add(
      `scale-out: ${cores} workers × 1 core / 1 worker × ${cores} cores`,
      scaleMany.throughput / scaleOne.throughput,
      '> 1 means one worker per core wins',
      () => null,
    );

  log('CPU ms per job by process (top concurrency of each series):');
  for (const p of points.filter((p) => p.concurrency === topC)) {
    log(
      `  ${p.label.padEnd(28)} ${Object.entries(p.cpuMsPerJob)
        .map(([k, v]) => `${k} ${f(v, 2)}`)
        .join(' · ')}`,
    );
  }
  log();
  log('Redis commands per job (top concurrency):');
  for (const p of points.filter((p) => p.concurrency === topC))
    log(
      `  ${p.label.padEnd(28)} ${f(p.redisCommandsPerJob)} cmds, ${f(p.redisCommandUsPerJob, 0)} µs: ${Object.entries(
        p.redisTopCommands,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  log('Redis execution µs per job by command (top concurrency; commandstats: a script counts its commands too):');
  for (const p of points.filter((p) => p.concurrency === topC))
    log(
      `  ${p.label.padEnd(28)} ${Object.entries(p.redisTopUsPerJob)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  if (bareTop && noop1 && bare1) {
    // Where the hub's Redis work goes beyond the bare round trip's, per job, at c=1 (no backlog).
    const diff = (a: Point, b: Point) =>
      [...new Set([...Object.keys(a.redisByCommandPerJob), ...Object.keys(b.redisByCommandPerJob)])]
        .map((k) => [k, (a.redisByCommandPerJob[k] ?? 0) - (b.redisByCommandPerJob[k] ?? 0)] as const)
        .filter(([, d]) => Math.abs(d) >= 0.3)
        .sort((x, y) => y[1] - x[1]);
    log(
      `Redis commands per job, no-op hub minus bare, c=1: ${diff(noop1, bare1)
        .map(([k, d]) => `${k} ${d > 0 ? '+' : ''}${d.toFixed(1)}`)
        .join(', ')}`,
    );
  }
  if (bareTop) {
    const ceiling = (p: Point | undefined) => (p ? 1000 / redisCpuMsOf(p) : NaN);
    log(
      `Redis ceiling per model per shard (1 s of redis-server CPU / its CPU per job): hub ${f(ceiling(batchingOn), 0)} jobs/s, no-op ${f(ceiling(noopTop), 0)} jobs/s, bare ${f(ceiling(bareTop), 0)} jobs/s`,
    );
  }
  if (attack)
    log(
      `Tenant A's answers during the attack phase (${attack.attackerRequests} requests): ${Object.entries(
        attack.attackerAnswers,
      )
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}`,
    );
  log();
  log('Targets (ratios of this run):');
  for (const t of targets) log(`  ${t.met === null ? '·' : t.met ? '✓' : '✗'} ${t.what}: ${t.value}  (${t.target})`);

  if (opts.profile) {
    log();
    for (const name of fs.existsSync(profileDir) ? fs.readdirSync(profileDir) : []) {
      const dir = path.join(profileDir, name);
      const main = fs
        .readdirSync(dir)
        .map((file) => path.join(dir, file))
        .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
      if (!main) continue;
      log(`CPU profile of the ${name}'s event loop (${path.relative(REPO_ROOT, main)}): top self time`);
      for (const t of topSelfTime(main, 12)) log(`  ${f(t.pct)}%  ${t.fn}`);
    }
  }

  // ---- JSON and chart ----
  fs.mkdirSync(opts.out!, { recursive: true });
  const base = `${opts.model}${sizeList.length > 0 ? `-${sizeList.join('_')}` : ''}`;
  const json = {
    model: opts.model,
    weights: entry.weights,
    input: inputLabel,
    cores,
    machine: 'shared',
    date: new Date().toISOString(),
    seconds,
    concurrencies,
    ...results,
    points,
    targets,
  };
  fs.writeFileSync(path.join(opts.out!, `${base}.json`), JSON.stringify(json, null, 2));
  const series = (label: string, pick: (p: Point) => number): Series => ({
    name: label,
    // The sweep's point at each concurrency (a repeated round, e.g. c=1's second, is not drawn).
    points: new Map(
      points
        .filter((p) => p.label === label)
        .reverse()
        .map((p) => [p.concurrency, pick(p)]),
    ),
  });
  const labels = [
    ...new Set(
      points
        .filter((p) => !p.label.startsWith('scale') && !/batching off|page round/.test(p.label))
        .map((p) => p.label),
    ),
  ];
  await writeChart(
    path.join(opts.out!, `${base}.png`),
    `${opts.model}, ${inputLabel}, ${cores} shared cores, ${new Date().toISOString().slice(0, 16)}Z`,
    labels.map((l) => series(l, (p) => p.throughput)),
    labels.map((l) => series(l, (p) => p.p95)),
    concurrencies,
    raw?.best,
  );
  log();
  log(`wrote ${path.relative(REPO_ROOT, path.join(opts.out!, `${base}.json`))} and ${base}.png`);
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  redis?.disconnect();
  await stopAll();
  models.cleanup();
}
// The batch phase runs last, on a fresh hub of its own (bench/batch.ts), into this output.
if (exitCode === 0 && !skip.has('batch')) {
  const { command, args } = tsNode('bench/batch.ts');
  exitCode =
    spawnSync(command, [...args, '--model', opts.model!, '--items', opts['batch-items']!], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
    }).status ?? 1;
}
process.exit(exitCode);
