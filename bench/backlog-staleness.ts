/**
 * How stale is the autoscaling signal? A burst of jobs on one model with one worker draining it;
 * Prometheus's view (`modelhub_queue_backlog{lane="interactive"}` scraped from the API's metrics
 * listener) against the truth (the queue's waiting + prioritized + delayed, read straight from
 * Redis every 20 ms).
 *   npm run bench:backlog -- --jobs 40 --bursts 3 --scrape-ms 250
 * Per scrape: the gauge's error in jobs, and the served value's age (how far back the queue last
 * held what the gauge says); per burst: how long the gauge still shows a backlog after the queue
 * drained. A private redis-server, the API and one worker as child processes (bench/lib), the
 * deliberately slow test model so the burst takes seconds to drain. Timings: run it under the
 * heavy-run lock, on a quiet machine.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { b64, solidImage } from '../test/helpers/images.js';
import { metricValue } from '../test/helpers/hub.js';
import { slowModelsDir } from '../test/helpers/slow-model.js';
import { freePort, httpReady, startService, stopAll, tsNode } from './lib/procs.js';
import { percentile } from './lib/load.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '40' },
    bursts: { type: 'string', default: '3' },
    'scrape-ms': { type: 'string', default: '250' },
    /** Unset: the API's own default, as deployed. */
    'refresh-ms': { type: 'string' },
  },
});
const jobs = Number(values.jobs);
const bursts = Number(values.bursts);
const scrapeMs = Number(values['scrape-ms']);
const MODEL = 'slow';
const TRUTH_EVERY_MS = 20;

interface Truth {
  at: number;
  backlog: number;
}
interface Scrape {
  at: number;
  gauge: number;
  truth: number;
}

async function main(): Promise<void> {
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await startService(
    'redis',
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    async () => {
      const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        return true;
      } finally {
        probe.disconnect();
      }
    },
  );
  // About half a second per batch of 4 on two cores: 40 jobs take several seconds to drain.
  const modelsDir = slowModelsDir({ layers: 16, channels: 48, size: 224, maxBatchSize: 4 });
  const env: Record<string, string> = {
    REDIS_URL: redisUrl,
    MODELHUB_PREFIX: 'bench',
    MODELHUB_MODELS_DIR: modelsDir,
    LOG_LEVEL: 'warn',
    ...(values['refresh-ms'] ? { API_METRICS_REFRESH_MS: values['refresh-ms'] } : {}),
  };
  const apiPort = await freePort();
  const metricsPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const apiCmd = tsNode('api/main.ts');
  await startService(
    'api',
    apiCmd.command,
    apiCmd.args,
    { ...env, PORT: String(apiPort), API_METRICS_PORT: String(metricsPort) },
    httpReady(`${apiUrl}/healthz`),
  );
  const workerPort = await freePort();
  const workerCmd = tsNode('worker/main.ts');
  await startService(
    'worker',
    workerCmd.command,
    [...workerCmd.args, '--device', 'cpu', '--models', MODEL],
    { ...env, METRICS_PORT: String(workerPort) },
    httpReady(`http://127.0.0.1:${workerPort}/healthz`),
  );
  const redis = new Redis(redisUrl);
  const key = (k: string) => `bench:{model.${MODEL}}:${k}`;
  const readTruth = async (): Promise<number> => {
    const replies = (await redis.multi().llen(key('wait')).zcard(key('prioritized')).zcard(key('delayed')).exec()) as [
      Error | null,
      number,
    ][];
    return replies.reduce((n, [, v]) => n + v, 0);
  };
  const image = b64(await solidImage(64, 64, [30, 120, 200]));
  const submit = async () => {
    const r = await fetch(`${apiUrl}/v1/models/${MODEL}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { image } }),
    });
    if (r.status !== 202) throw new Error(`job refused: ${r.status} ${await r.text()}`);
  };
  try {
    await submit(); // warm-up: the worker's session and the API's code paths
    while ((await readTruth()) > 0) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));

    const scrapes: Scrape[] = [];
    const drainLagsMs: number[] = [];
    const ages: number[] = [];
    for (let b = 0; b < bursts; b++) {
      const timeline: Truth[] = [];
      const run = { sampling: true };
      const truthLoop = (async () => {
        while (run.sampling) {
          timeline.push({ at: performance.now(), backlog: await readTruth() });
          await new Promise((r) => setTimeout(r, TRUTH_EVERY_MS));
        }
      })();
      const burstScrapes: Scrape[] = [];
      const scrapeLoop = (async () => {
        while (run.sampling) {
          const sent = performance.now();
          const page = await (await fetch(metricsUrl)).text();
          const at = (sent + performance.now()) / 2;
          const gauge = page.includes('modelhub_queue_backlog')
            ? metricValue(page, 'modelhub_queue_backlog', { model: MODEL, lane: 'interactive' })
            : 0;
          burstScrapes.push({ at, gauge, truth: await readTruth() });
          await new Promise((r) => setTimeout(r, scrapeMs));
        }
      })();
      const started = performance.now();
      await Promise.all(Array.from({ length: jobs }, submit));
      // Until the queue drained and the gauge said so for two seconds (or 120 s passed).
      let drainedAt: number | null = null;
      let gaugeZeroAt: number | null = null;
      while (performance.now() - started < 120_000) {
        await new Promise((r) => setTimeout(r, 50));
        const last = timeline.at(-1);
        if (drainedAt === null && last && last.backlog === 0 && last.at > started + 100) drainedAt = last.at;
        const lastScrape = burstScrapes.at(-1);
        if (
          drainedAt !== null &&
          gaugeZeroAt === null &&
          lastScrape &&
          lastScrape.at > drainedAt &&
          lastScrape.gauge === 0
        )
          gaugeZeroAt = lastScrape.at;
        if (gaugeZeroAt !== null && performance.now() - gaugeZeroAt > 2000) break;
      }
      run.sampling = false;
      await Promise.all([truthLoop, scrapeLoop]);
      if (drainedAt !== null && gaugeZeroAt !== null) drainLagsMs.push(gaugeZeroAt - drainedAt);
      // The served value's age: how far back the queue last held what the gauge reads.
      for (const s of burstScrapes.filter((x) => x.at >= started && (drainedAt === null || x.at <= drainedAt + 6000))) {
        const held = timeline.filter((t) => t.at <= s.at && t.backlog === s.gauge).at(-1);
        if (held) ages.push(Math.max(0, s.at - held.at));
      }
      scrapes.push(...burstScrapes.filter((x) => x.at >= started));
      console.log(
        `burst ${b + 1}: ${jobs} jobs, drained after ${drainedAt === null ? '?' : Math.round(drainedAt - started)} ms; gauge at 0 ${Math.round(drainLagsMs.at(-1) ?? NaN)} ms later; scrapes ${burstScrapes.length}`,
      );
      await new Promise((r) => setTimeout(r, 3000));
    }
    const errors = scrapes.map((s) => Math.abs(s.gauge - s.truth)).sort((a, c) => a - c);
    const sortedAges = [...ages].sort((a, c) => a - c);
    const round = (x: number) => Math.round(x);
    console.log(
      `\nbacklog gauge vs queue: ${bursts} bursts of ${jobs} jobs, 1 worker, a scrape every ${scrapeMs} ms, API_METRICS_REFRESH_MS ${values['refresh-ms'] ?? 'default'}`,
    );
    console.table({
      'gauge error, jobs': {
        p50: percentile(errors, 50),
        p95: percentile(errors, 95),
        max: errors.at(-1) ?? NaN,
      },
      'served value age, ms': {
        p50: round(percentile(sortedAges, 50)),
        p95: round(percentile(sortedAges, 95)),
        max: round(sortedAges.at(-1) ?? NaN),
      },
      'gauge > 0 after the queue drained, ms': {
        p50: round(
          percentile(
            [...drainLagsMs].sort((a, c) => a - c),
            50,
          ),
        ),
        p95: round(
          percentile(
            [...drainLagsMs].sort((a, c) => a - c),
            95,
          ),
        ),
        max: round(Math.max(...drainLagsMs)),
      },
    });
  } finally {
    redis.disconnect();
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    void stopAll().finally(() => process.exit(1));
  },
);
