/**
 * One N-item batch against the same N items as N single jobs, same model, one process tree:
 *   npm run bench:batch -- --model text-direction --items 10000
 * A private redis-server (so INFO commandstats counts this run only), the API and one worker as
 * child processes (bench/lib, as `npm run bench`). Per way of submitting: items/s end to end (submit → every
 * result read by the client), CPU per item by process (API, worker, Redis, the client), and
 * Redis commands and Redis CPU per item. Timings, not tests: run it on a quiet machine.
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { generateTestModels } from '../models/tools/generate-test-models.js';
import { textLineImage } from '../test/helpers/images.js';
import {
  cpuBetween,
  freePort,
  httpReady,
  processProbe,
  selfProbe,
  snapshot,
  startService,
  stopAll,
  tsNode,
  type CpuProbe,
} from './lib/procs.js';
import { commandStats, statsBetween, type CommandStats } from './lib/redis-stats.js';

/** The fields this bench reads of the hub's job, batch and error answers. */
interface HubAnswer {
  id?: string;
  status?: string;
  completed_at?: string | null;
}

const { values } = parseArgs({
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

interface Figures {
  seconds: number;
  cpuMs: Record<string, number>;
  redis: CommandStats;
}

async function measure(probes: CpuProbe[], redis: Redis, work: () => Promise<void>): Promise<Figures> {
  const cpu0 = snapshot(probes);
  const redis0 = await commandStats(redis);
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const redis1 = await commandStats(redis);
  return { seconds, cpuMs: cpuBetween(cpu0, snapshot(probes)), redis: statsBetween(redis0, redis1) };
}

async function main(): Promise<void> {
  generateTestModels();
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const redisServer = await startService(
    'redis',
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    async () => {
      const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping(); // resolves 'PONG' or rejects
        return true;
      } finally {
        probe.disconnect();
      }
    },
  );
  const env = {
    REDIS_URL: redisUrl,
    MODELHUB_PREFIX: 'bench',
    LOG_LEVEL: 'warn',
    BATCH_CHUNK_SIZE: String(values['chunk-size']),
    BATCH_MAX_ITEMS: String(Math.max(items, 50_000)),
    QUEUE_MAX_WAITING: String(items * 2),
    JOB_RETENTION_COUNT: String(items * 2),
  };
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const apiCmd = tsNode('api/main.ts');
  const api = await startService(
    'api',
    apiCmd.command,
    apiCmd.args,
    // Its metrics listener too: a hub already running here (or a test's) holds the default port.
    { ...env, PORT: String(apiPort), API_METRICS_PORT: String(await freePort()) },
    httpReady(`${apiUrl}/healthz`),
  );
  const workerPort = await freePort();
  const workerCmd = tsNode('worker/main.ts');
  const worker = await startService(
    'worker',
    workerCmd.command,
    [...workerCmd.args, '--device', 'cpu', '--models', model],
    { ...env, METRICS_PORT: String(workerPort) },
    httpReady(`http://127.0.0.1:${workerPort}/healthz`),
  );
  const redis = new Redis(redisUrl);
  const probes = [
    processProbe('api', api.pid),
    processProbe('worker', worker.pid),
    processProbe('redis', redisServer.pid),
    selfProbe('client'),
  ];
  try {
    const words = ['Queue', 'Batch', 'Worker', 'Redis', 'Tensor', 'Metrics', 'Webhook', 'Device'];
    const images = await Promise.all(
      words.map(async (w, i) => {
        const img = await textLineImage(`${w} bulk ${i}`);
        return (i % 2 ? await sharp(img).rotate(180).png().toBuffer() : img).toString('base64');
      }),
    );
    const inputs = Array.from({ length: items }, (_, i) => ({ image: images[i % images.length] }));
    const post = (url: string, body: string, type = 'application/json') =>
      fetch(url, { method: 'POST', headers: { 'content-type': type }, body }).then(
        (r) => r.json() as Promise<HubAnswer>,
      );
    // Warm-up: the worker's session and the API's code paths.
    await Promise.all(images.map((image) => post(`${apiUrl}/v1/models/${model}/predict`, JSON.stringify({ image }))));
    // The warm-up's calls that went out as jobs are in the completed set already; those coalesced
    // into one entry are on the predict lane: how many of each varies with their arrival.
    const completedKey = `bench:{model.${model}}:completed`;
    const completedBefore = await redis.zcard(completedKey);

    const singles = await measure(probes, redis, async () => {
      const ids: string[] = new Array(items);
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < items) {
            const i = next++;
            const job = await post(`${apiUrl}/v1/models/${model}/jobs`, JSON.stringify({ input: inputs[i] }));
            if (!job.id) throw new Error(`job refused: ${JSON.stringify(job)}`);
            ids[i] = job.id;
          }
        }),
      );
      // Wait until the worker has finished them all (one ZCARD a quarter second), then read
      // every result once, as a client would.
      while ((await redis.zcard(completedKey)) < completedBefore + items) await new Promise((r) => setTimeout(r, 250));
      next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < items) {
            const job = (await (await fetch(`${apiUrl}/v1/jobs/${ids[next++]}`)).json()) as HubAnswer;
            if (job.status !== 'succeeded') throw new Error(`job ${job.id}: ${job.status}`);
          }
        }),
      );
    });

    const batch = await measure(probes, redis, async () => {
      const body = inputs.map((input) => JSON.stringify(input)).join('\n');
      const view = await post(`${apiUrl}/v1/models/${model}/batches`, body, 'application/x-ndjson');
      if (!view.id) throw new Error(`batch refused: ${JSON.stringify(view)}`);
      for (;;) {
        const b = (await (await fetch(`${apiUrl}/v1/batches/${view.id}`)).json()) as HubAnswer;
        if (b.completed_at) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const text = await (await fetch(`${apiUrl}/v1/batches/${view.id}/results`)).text();
      const lines = text.split('\n').filter(Boolean).length;
      if (lines !== items) throw new Error(`batch results: ${lines} lines for ${items} items`);
    });

    const row = (name: string, f: Figures) => ({
      way: name,
      'items/s': Math.round(items / f.seconds),
      'api CPU ms/item': round(f.cpuMs.api / items),
      'worker CPU ms/item': round(f.cpuMs.worker / items),
      'redis process CPU ms/item': round(f.cpuMs.redis / items),
      'client CPU ms/item': round(f.cpuMs.client / items),
      'redis cmds/item': round(f.redis.calls / items),
      'redis cmd CPU µs/item': round(f.redis.usec / items),
    });
    console.log(
      `\nbatch vs single jobs: model ${model}, ${items} items, chunk size ${values['chunk-size']}, 1 worker, private Redis (figures from one run on a shared machine)`,
    );
    console.table([row(`${items} single jobs`, singles), row(`1 batch of ${items}`, batch)]);
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b) : NaN);
    console.log(
      `batch / single: items/s ${ratio(singles.seconds, batch.seconds)}x, Redis commands per item ${ratio(batch.redis.calls, singles.redis.calls)}, Redis command CPU per item ${ratio(batch.redis.usec, singles.redis.usec)}, worker CPU per item ${ratio(batch.cpuMs.worker, singles.cpuMs.worker)}, API CPU per item ${ratio(batch.cpuMs.api, singles.cpuMs.api)}`,
    );
  } finally {
    redis.disconnect();
    await stopAll();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();
