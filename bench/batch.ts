/**
 * One N-item batch against the same N items as N single jobs, same model, one process tree:
 *   npm run bench:batch -- --model text-direction --items 10000
 * A private redis-server (so INFO commandstats and Redis CPU count this run only), the API and
 * one worker as child processes. Per way of submitting: items/s end to end (submit → every
 * result read by the client), CPU per item by process (API, worker, Redis, the client), and
 * Redis commands and Redis CPU per item. Timings, not tests: run it on a quiet machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { REPO_ROOT } from '../shared/config.js';
import { startLocalRedis } from '../deploy/local/redis.js';
import { generateTestModels } from '../models/tools/generate-test-models.js';
import { freePort, startWorker } from '../test/helpers/hub.js';
import { textLineImage } from '../test/helpers/images.js';

const { values } = parseArgs({
  strict: false,
  options: {
    model: { type: 'string', default: 'text-direction' },
    items: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
    'chunk-size': { type: 'string', default: '64' },
  },
});
const model = String(values.model);
const items = Number(values.items);
const concurrency = Number(values.concurrency);

const TICK_MS = 1000 / 100; // /proc CPU times are in clock ticks (USER_HZ, 100 on Linux)

/** CPU ms (user + system) a process has used, from /proc/<pid>/stat. */
function processCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

const clientCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface RedisStats {
  calls: number;
  cpuMs: number;
}

async function redisStats(redis: Redis): Promise<RedisStats> {
  const commandstats = await redis.info('commandstats');
  const calls = [...commandstats.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  const cpu = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)![1]);
  return { calls, cpuMs: (field('used_cpu_sys') + field('used_cpu_user')) * 1000 };
}

async function startApi(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'api/main.ts')], { env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return { child, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the API did not start');
}

interface Figures {
  seconds: number;
  cpuMs: Record<string, number>;
  redis: RedisStats;
}

async function measure(pids: Record<string, number>, redis: Redis, work: () => Promise<void>): Promise<Figures> {
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuMs(pid)]));
  const client0 = clientCpuMs();
  const redis0 = await redisStats(redis);
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const redis1 = await redisStats(redis);
  const cpuMs = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuMs(pid) - cpu0[name]]));
  cpuMs.client = clientCpuMs() - client0;
  // The two INFO calls of the measurement itself are not the hub's.
  return { seconds, cpuMs, redis: { calls: redis1.calls - redis0.calls - 2, cpuMs: redis1.cpuMs - redis0.cpuMs } };
}

async function main(): Promise<void> {
  generateTestModels();
  const redisPort = await freePort();
  const redisServer = await startLocalRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const env = { REDIS_URL: redisUrl, MODELHUB_PREFIX: 'bench', BATCH_CHUNK_SIZE: String(values['chunk-size']), BATCH_MAX_ITEMS: String(Math.max(items, 50_000)), QUEUE_MAX_WAITING: String(items * 2), JOB_RETENTION_COUNT: String(items * 2) };
  const api = await startApi(env);
  const worker = await startWorker(env, ['--device', 'cpu', '--models', model]);
  const redis = new Redis(redisUrl);
  const pids = { api: api.child.pid!, worker: worker.child.pid!, redis: redisServer.pid! };
  try {
    const words = ['Queue', 'Batch', 'Worker', 'Redis', 'Tensor', 'Metrics', 'Webhook', 'Device'];
    const images = await Promise.all(
      words.map(async (w, i) => {
        const img = await textLineImage(`${w} bulk ${i}`);
        return (i % 2 ? await sharp(img).rotate(180).png().toBuffer() : img).toString('base64');
      }),
    );
    const inputs = Array.from({ length: items }, (_, i) => ({ image: images[i % images.length] }));
    const post = (url: string, body: string, type = 'application/json') => fetch(url, { method: 'POST', headers: { 'content-type': type }, body }).then((r) => r.json() as Promise<any>);
    // Warm-up: the worker's session and the API's code paths.
    await Promise.all(images.map((image) => post(`${api.url}/v1/models/${model}/predict`, JSON.stringify({ image }))));

    const singles = await measure(pids, redis, async () => {
      const ids: string[] = new Array(items);
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < items) {
            const i = next++;
            ids[i] = (await post(`${api.url}/v1/models/${model}/jobs`, JSON.stringify({ input: inputs[i] }))).id;
          }
        }),
      );
      // Wait until the worker has finished them all (one ZCARD a quarter second), then read
      // every result once, as a client would.
      const completedKey = `bench:{model.${model}}:completed`;
      while ((await redis.zcard(completedKey)) < items + images.length) await new Promise((r) => setTimeout(r, 250));
      next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < items) {
            const job = (await (await fetch(`${api.url}/v1/jobs/${ids[next++]}`)).json()) as any;
            if (job.status !== 'succeeded') throw new Error(`job ${job.id}: ${job.status}`);
          }
        }),
      );
    });

    const batch = await measure(pids, redis, async () => {
      const body = inputs.map((input) => JSON.stringify(input)).join('\n');
      const view = await post(`${api.url}/v1/models/${model}/batches`, body, 'application/x-ndjson');
      if (!view.id) throw new Error(`batch refused: ${JSON.stringify(view)}`);
      for (;;) {
        const b = (await (await fetch(`${api.url}/v1/batches/${view.id}`)).json()) as any;
        if (b.completed_at) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const text = await (await fetch(`${api.url}/v1/batches/${view.id}/results`)).text();
      const lines = text.split('\n').filter(Boolean).length;
      if (lines !== items) throw new Error(`batch results: ${lines} lines for ${items} items`);
    });

    const row = (name: string, f: Figures) => ({
      way: name,
      'items/s': Math.round(items / f.seconds),
      'api CPU ms/item': round(f.cpuMs.api / items),
      'worker CPU ms/item': round(f.cpuMs.worker / items),
      'redis CPU ms/item': round(f.redis.cpuMs / items),
      'client CPU ms/item': round(f.cpuMs.client / items),
      'redis cmds/item': round(f.redis.calls / items),
    });
    console.log(`\nbatch vs single jobs: model ${model}, ${items} items, chunk size ${values['chunk-size']}, 1 worker, private Redis (figures from one run on a shared machine)`);
    console.table([row(`${items} single jobs`, singles), row(`1 batch of ${items}`, batch)]);
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b) : NaN);
    console.log(
      `batch / single: items/s ${ratio(singles.seconds, batch.seconds)}x, Redis commands per item ${ratio(batch.redis.calls, singles.redis.calls)}, Redis CPU per item ${ratio(batch.redis.cpuMs, singles.redis.cpuMs)}, worker CPU per item ${ratio(batch.cpuMs.worker, singles.cpuMs.worker)}, API CPU per item ${ratio(batch.cpuMs.api, singles.cpuMs.api)}`,
    );
  } finally {
    redis.disconnect();
    await worker.stop('SIGTERM');
    api.child.kill('SIGTERM');
    redisServer.kill('SIGTERM');
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();
