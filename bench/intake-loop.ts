/**
 * What ~1 MB job bodies cost the API's event loop (issue 28), measured against a real API started
 * in this process (Redis at REDIS_URL, a private prefix, no worker: the jobs stay queued) while a
 * child process sends the load, so the client's own work is not counted:
 *   - loop ms per MB of body: the loop's busy time (performance.eventLoopUtilization) while
 *     `--rounds` rounds of `--parallel` bodies of `--mb` MB are answered, over the MB received;
 *   - /healthz: the slowest of the health checks sent every 20 ms during the rounds.
 * Each setting of OFFLOOP_PARSE_BYTES in `--offloop` (comma list) runs side by side in one run.
 *   npx tsx bench/intake-loop.ts [--mb 0.95] [--parallel 20] [--rounds 5] [--offloop 1048576,65536]
 * Profile one setting with: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/intake-loop.ts --offloop X
 *
 * `--steps`: instead, the loop's work for one body, step by step (ms per MB, median of 30,
 * interleaved so machine load hits every step alike): the byte scan, the text decode (TextDecoder,
 * and Buffer's UTF-8 decoder for comparison: the same on Node 20), JSON.parse, the base64 strip/check/decode, and the
 * queue's JSON.stringify of the job's data. Less noisy than the end-to-end figures on a shared host.
 * `--handoff`: a body moved to the parse thread against copied to it (see handoff()).
 */
import { scanJsonStructure } from '../api/body-parse.js';
import { isBase64, stripBase64Image } from '../shared/tasks.js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../shared/config.js';
import { startApi } from '../api/server.js';
import { deletePrefix, testPrefix } from '../test/helpers/hub.js';

const { values: opts } = parseArgs({
  options: {
    mb: { type: 'string', default: '0.95' },
    parallel: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '5' },
    offloop: { type: 'string', default: '1048576,65536' },
    steps: { type: 'boolean', default: false },
    handoff: { type: 'boolean', default: false },
    // An installed image model (mobilenetv2's weights ship in models/), so every body is queued.
    model: { type: 'string', default: 'mobilenetv2' },
  },
});

/** The load: `parallel` bodies at once, `rounds` times; a valid PNG header then filler, so each is read, parsed, checked and queued. */
const CLIENT = `
const [url, mb, parallel, rounds, model] = process.argv.slice(1);
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64');
const image = Buffer.concat([png.subarray(0, png.length - 12), Buffer.alloc(Math.floor(Number(mb) * 1e6 * 0.75) - png.length), png.subarray(png.length - 12)]).toString('base64');
const body = JSON.stringify({ input: { image } });
const statuses = {};
(async () => {
  for (let r = 0; r < Number(rounds); r++)
    await Promise.all(Array.from({ length: Number(parallel) }, () =>
      fetch(url + '/v1/models/' + model + '/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((x) => { statuses[x.status] = (statuses[x.status] ?? 0) + 1; return x.text(); })));
  process.stdout.write(JSON.stringify({ bodyBytes: body.length, statuses }));
})();
`;

/**
 * CPU time of this process's main thread (the event loop's), ms: the thread-group leader's
 * utime + stime (Linux /proc; 10 ms ticks). Unlike the loop's busy wall time it is not inflated
 * by other processes taking the cores, and it leaves out the parse threads.
 */
function mainThreadCpuMs(): { user: number; sys: number } {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

async function measure(offloopBytes: number) {
  const prefix = testPrefix('intake-loop');
  const config = loadConfig({
    ...process.env,
    MODELHUB_PREFIX: prefix,
    PORT: '0',
    API_METRICS_PORT: '0',
    LOG_LEVEL: 'error',
    OFFLOOP_PARSE_BYTES: String(offloopBytes),
    TENANT_MAX_STORED_BYTES: '0',
    QUEUE_MAX_WAITING: '100000',
    MODELHUB_RECONCILE_PERIOD_MS: '0',
  });
  const api = await startApi(config);
  try {
    let worst = 0;
    const state = { sending: true };
    const health = (async () => {
      while (state.sending) {
        const t = performance.now();
        await fetch(`${api.url}/healthz`).then((r) => r.text());
        worst = Math.max(worst, performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const before = performance.eventLoopUtilization();
    const cpuBefore = mainThreadCpuMs();
    const child = spawn(process.execPath, ['-e', CLIENT, api.url, opts.mb, opts.parallel, opts.rounds, opts.model], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => child.once('exit', r));
    const elu = performance.eventLoopUtilization(before);
    const cpuAfter = mainThreadCpuMs();
    const cpuMs = cpuAfter.user + cpuAfter.sys - cpuBefore.user - cpuBefore.sys;
    const sysMs = cpuAfter.sys - cpuBefore.sys;
    state.sending = false;
    await health;
    const sent = JSON.parse(out) as { bodyBytes: number; statuses: Record<string, number> };
    const mbSent = (sent.bodyBytes * Number(opts.parallel) * Number(opts.rounds)) / 1e6;
    return {
      offloopBytes,
      statuses: sent.statuses,
      mbSent,
      loopMsPerMb: elu.active / mbSent,
      cpuMsPerMb: cpuMs / mbSent,
      sysMsPerMb: sysMs / mbSent,
      healthzMaxMs: worst,
    };
  } finally {
    await api.close();
    await deletePrefix(prefix);
  }
}

function steps(): void {
  const mb = Number(opts.mb);
  const image = Buffer.alloc(Math.floor(mb * 1e6 * 0.75), 7).toString('base64');
  const bytes = Buffer.from(JSON.stringify({ input: { image } }));
  const text = bytes.toString('utf8');
  const parsed = JSON.parse(text) as { input: { image: string } };
  const work: Record<string, () => unknown> = {
    'scan (depth/values)': () => scanJsonStructure(bytes, 32, 100_000),
    'decode: TextDecoder': () => new TextDecoder('utf-8').decode(bytes),
    'decode: Buffer utf8': () => bytes.toString('utf8'),
    'JSON.parse': () => JSON.parse(text),
    'base64 strip + check': () => isBase64(stripBase64Image(parsed.input.image)),
    'base64 decode': () => Buffer.from(parsed.input.image, 'base64'),
    'queue: JSON.stringify of the job': () => JSON.stringify({ v: 2, model: 'resnet50', input: parsed.input }),
  };
  const times = new Map<string, number[]>(Object.keys(work).map((k) => [k, []]));
  for (let i = 0; i < 30; i++)
    for (const [name, fn] of Object.entries(work)) {
      const t = performance.now();
      fn();
      times.get(name)!.push(performance.now() - t);
    }
  const mbBody = bytes.length / 1e6;
  for (const [name, xs] of times) {
    const median = [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`${name.padEnd(36)} ${(median / mbBody).toFixed(2)} ms/MB`);
  }
}

/**
 * `--handoff`: the loop's cost of handing a body of `--mb` MB to a thread, moved (transferred) or
 * copied (structured clone), with the Buffer.concat that assembles it from 64 KiB reads: ms per
 * body, mean of 100, each way twice. Measured: the same in the steady state (0.1-0.7 ms each way);
 * whichever runs first pays the allocator's warm-up (fresh pages), 4-6 ms.
 */
async function handoff(): Promise<void> {
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(
    `require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m.byteLength));`,
    { eval: true },
  );
  const parts = Array.from({ length: Math.ceil((Number(opts.mb) * 1e6) / 65536) }, () => Buffer.alloc(65536, 1));
  for (const mode of ['moved', 'copied', 'moved', 'copied']) {
    let post = 0;
    let concat = 0;
    for (let i = 0; i < 100; i++) {
      let t = performance.now();
      const b = Buffer.concat(parts);
      concat += performance.now() - t;
      t = performance.now();
      if (mode === 'moved') w.postMessage(b.buffer, [b.buffer]);
      else w.postMessage(b);
      post += performance.now() - t;
      await new Promise((r) => w.once('message', r));
    }
    console.log(
      `${mode.padEnd(7)} concat ${(concat / 100).toFixed(2)} ms + post ${(post / 100).toFixed(2)} ms per body`,
    );
  }
  await w.terminate();
}

async function main() {
  if (opts.steps) return steps();
  if (opts.handoff) return handoff();
  const rows = [];
  for (const o of opts.offloop.split(',').map(Number)) rows.push(await measure(o));
  for (const r of rows)
    console.log(
      `OFFLOOP_PARSE_BYTES=${r.offloopBytes}: ${r.mbSent.toFixed(0)} MB sent (answers ${JSON.stringify(r.statuses)}), loop busy ${r.loopMsPerMb.toFixed(1)} ms/MB, main thread CPU ${r.cpuMsPerMb.toFixed(1)} ms/MB (kernel ${r.sysMsPerMb.toFixed(1)}), /healthz max ${r.healthzMaxMs.toFixed(0)} ms`,
    );
  if (rows.length > 1)
    console.log(
      `ratio last/first: loop ms/MB ${(rows.at(-1)!.loopMsPerMb / rows[0].loopMsPerMb).toFixed(2)}, /healthz max ${(rows.at(-1)!.healthzMaxMs / rows[0].healthzMaxMs).toFixed(2)}`,
    );
}
void main();
