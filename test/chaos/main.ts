/**
 * `npm run chaos -- --seconds N [--seed S]`: a seeded chaos run against a private hub. Three
 * tenants submit jobs (webhooks, deadlines, idempotency keys, priorities), cancel, delete, poll,
 * predict and submit and cancel batches while workers are killed or stopped past their lock time,
 * Redis restarts (AOF), the API's and workers' Redis connections are cut, and the webhook receiver
 * fails, is slow or times out. Then, once the hub is quiet, it checks the invariants I1–I7 (see
 * checker.ts and the README's "Chaos run"). Exit 0: all held; 1: a violation (printed with the
 * operations and faults around it); 2: the run could not be set up.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bulkQueueName, modelQueueName, predictQueueName, WEBHOOK_QUEUE } from '../../shared/redis/keys.js';
import type { EntryData, EntryResult } from '../../shared/predict/entry.js';
import { b64, solidImage } from '../helpers/images.js';
import { slowModelsDir } from '../helpers/slow-model.js';
import { checkBatches, checkJobs, checkServerErrors, checkUsage, checkWebhooks, quiesce, Report } from './checker.js';
import { faultLoop, type RedisWindow } from './faults.js';
import { History, formatEntry } from './history.js';
import { Rng } from './prng.js';
import { startApiProcess, startPrivateRedis, SupervisedWorker, type ApiProcess } from './processes.js';
import { startChaosReceiver, type ChaosReceiver } from './receiver.js';
import { Client, Ledger, tenantLoop, type Tenant } from './workload.js';

// A generated classifier (test/helpers/slow-model.ts) sized to a few ms per image: cheap on two
// cores, yet slow enough that a queue builds up, so cancels, deadlines and quotas come into play.
const MODEL = 'slow';
const PREFIX = 'chaos';
const LOCK_MS = 2000;
const RECONCILE_PERIOD_MS = 3000;
// Well above the API's event-loop stalls on a loaded two-core host: a stall longer than the
// timeout makes the hub miss a 2xx it was sent (its timer runs first) and deliver again.
const WEBHOOK_TIMEOUT_MS = 5000;
const LOOPS_PER_TENANT = 2;
const WORKERS = 2;
const BATCH_CHUNK_SIZE = 4;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', default: '9001' },
    quiet: { type: 'boolean', default: false },
    history: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isInteger(seed)) {
  console.error('usage: npm run chaos -- --seconds N [--seed S]');
  process.exit(2);
}

const tenants: Tenant[] = ['ta', 'tb', 'tc'].map((name) => ({ name, key: `chaos-key-${name}-0123456789` }));
const admin: Tenant = { name: 'ops', key: 'chaos-key-ops-admin-0123456789' };
const SECRET = 'whsec_' + Buffer.from('chaos run webhook secret 32 byte').toString('base64');
const log = (line: string) => {
  if (!values.quiet) console.log(line);
};

async function main(): Promise<number> {
  const history = new History();
  const rng = new Rng(seed);
  const modelsDir = slowModelsDir({ layers: 3, channels: 16, size: 96, maxBatchSize: 2 });
  const redis = await startPrivateRedis();
  const redisPort = Number(new URL(redis.url).port);
  const admin$ = new Redis(redis.url, { maxRetriesPerRequest: null });
  admin$.on('error', () => undefined);
  let receiver: ChaosReceiver | null = null;
  let api: ApiProcess | null = null;
  const workers: SupervisedWorker[] = [];
  try {
    receiver = await startChaosReceiver(
      SECRET,
      () => history.now(),
      {
        slowMs: Math.round(WEBHOOK_TIMEOUT_MS / 5),
        holdMs: WEBHOOK_TIMEOUT_MS + 1000,
      },
      (d) => {
        const subject = /^msg_(.+?)_(start|completed|batch\.completed)$/.exec(d.webhookId)?.[1];
        history.add(
          'note',
          'delivery',
          `${d.webhookId} (${String(d.json?.status)}) received at ${d.t} ms, receiver ${d.mode}: ${d.accepted ? 'accepted' : 'not accepted'}`,
          subject ? [subject] : [],
        );
      },
    );
    const env: Record<string, string> = {
      REDIS_URL: redis.url,
      MODELHUB_PREFIX: PREFIX,
      MODELHUB_MODELS_DIR: modelsDir,
      MODELHUB_API_KEYS: [...tenants.map((t) => `${t.key}:${t.name}`), `${admin.key}:${admin.name}:admin`].join(','),
      CHAOS_ADMIN_KEY: admin.key,
      // tc runs into its quotas (429 1402) now and then; the others have the defaults.
      MODELHUB_TENANT_LIMITS: JSON.stringify({ tc: { max_waiting: 12, max_stored_bytes: 60_000 } }),
      TENANT_RATE_RPS: '0',
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
      WEBHOOK_ATTEMPTS: '12',
      WEBHOOK_BACKOFF_MS: '100',
      WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
      MODELHUB_LOCK_MS: String(LOCK_MS),
      MODELHUB_STALLED_INTERVAL_MS: '500',
      MODELHUB_RECONCILE_PERIOD_MS: String(RECONCILE_PERIOD_MS),
      MODELHUB_HEARTBEAT_MS: '1000',
      PREDICT_WAIT_S: '20',
      BATCH_CHUNK_SIZE: String(BATCH_CHUNK_SIZE),
      MODELHUB_INTRA_OP_THREADS: '1',
      OFFLOOP_THREADS: '1',
      LOG_LEVEL: 'error',
    };
    api = await startApiProcess(env, MODEL);
    for (let i = 0; i < WORKERS; i++) {
      const w = new SupervisedWorker(i, env, ['--device', 'cpu', '--models', MODEL], (what) =>
        history.add('note', 'worker', what),
      );
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.start()));
    const images = await Promise.all(
      Array.from({ length: 6 }, async () =>
        b64(await solidImage(rng.int(24, 320), rng.int(16, 64), [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)])),
      ),
    );

    log(
      `chaos: seed ${seed}, ${seconds} s; redis ${redis.url}, api ${api.url}, ${WORKERS} workers, receiver ${receiver.url}`,
    );
    const client = new Client(api.url, history);
    const ledger = new Ledger();
    const windows: RedisWindow[] = [];
    const start = history.now();
    const until = start + seconds * 1000;
    const loops = tenants.flatMap((t, ti) =>
      Array.from({ length: LOOPS_PER_TENANT }, (_, li) =>
        tenantLoop(rng.fork(1000 + ti * 10 + li), t, client, ledger, history, {
          model: MODEL,
          images,
          webhookUrl: receiver!.url,
          until,
        }),
      ),
    );
    const trimQueue = new Queue(WEBHOOK_QUEUE, { connection: admin$, prefix: PREFIX });
    trimQueue.on('error', () => undefined);
    const faults = faultLoop(
      rng.fork(7),
      history,
      {
        redis,
        redisPort,
        admin: admin$,
        apiPid: api.child.pid!,
        workers,
        receiver,
        lockMs: LOCK_MS,
        webhooks: trimQueue,
      },
      until,
      windows,
    );
    await Promise.all([...loops, faults]);
    await trimQueue.close();
    const workloadEnd = history.now();
    history.add('note', 'quiesce', 'workload and faults ended');
    await Promise.all(workers.map((w) => w.ready()));

    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(modelQueueName(MODEL), { connection, prefix: PREFIX });
    const bulk = new Queue(bulkQueueName(MODEL), { connection, prefix: PREFIX });
    const predict = new Queue<EntryData, EntryResult>(predictQueueName(MODEL), { connection, prefix: PREFIX });
    const webhooks = new Queue(WEBHOOK_QUEUE, { connection, prefix: PREFIX });
    const report = new Report();
    const ctx = {
      client,
      ledger,
      tenants,
      admin,
      model: MODEL,
      redis: connection,
      prefix: PREFIX,
      queue,
      bulk,
      predict,
      webhooks,
      deliveries: receiver.deliveries,
      windows,
      settleMs: RECONCILE_PERIOD_MS + 20_000 + 5_000,
      batchChunkSize: BATCH_CHUNK_SIZE,
      history,
    };
    const quiet = await quiesce(ctx, report, 180_000);
    const quietAt = history.now();
    if (quiet) {
      checkJobs(ctx, report);
      checkWebhooks(ctx, report);
      const firstRead = await checkBatches(ctx, report);
      checkServerErrors(ctx, report);
      await checkUsage(ctx, report);
      await checkBatches(ctx, report, firstRead);
    }
    await Promise.all([queue.close(), bulk.close(), predict.close(), webhooks.close()]);
    connection.disconnect();

    // The summary.
    const sum = (m: Map<string, number>) => [...m.values()].reduce((s, n) => s + n, 0);
    const list = (m: Map<string, number>) => [...m.entries()].map(([k, n]) => `${k} ${n}`).join(', ');
    const byStatus = new Map<string, number>();
    for (const j of ledger.jobs.values()) {
      const last = [...j.obs].sort((a, b) => a.received - b.received).at(-1)?.status ?? 'unknown';
      byStatus.set(last, (byStatus.get(last) ?? 0) + 1);
    }
    console.log(
      `chaos: seed ${seed}: ${seconds} s of workload, quiet after ${((quietAt - workloadEnd) / 1000).toFixed(1)} s more, checked in ${((history.now() - quietAt) / 1000).toFixed(1)} s`,
    );
    console.log(`operations (${sum(history.opCounts)}): ${list(history.opCounts)}`);
    console.log(
      `jobs ${ledger.jobs.size} (${list(byStatus)}), batches ${ledger.batches.size}, webhook deliveries ${receiver.deliveries.length} (${receiver.deliveries.filter((d) => d.accepted).length} accepted)`,
    );
    console.log(
      `faults (${sum(history.faultCounts)}): ${list(history.faultCounts)}; worker restarts ${workers.reduce((s, w) => s + w.restarts, 0)}`,
    );
    console.log(`5xx answers: ${client.serverErrors.length} of ${client.answers}`);
    console.log(`invariant checks: ${list(report.checks as Map<string, number>)}`);
    for (const n of report.notes) console.log(`note: ${n}`);
    if (values.history) {
      fs.writeFileSync(values.history, history.entries.map(formatEntry).join('\n') + '\n');
      console.log(`history: ${history.entries.length} entries written to ${values.history}`);
    }
    if (report.violations.length === 0) {
      console.log(`chaos: PASS (seed ${seed})`);
      return 0;
    }
    console.log(
      `chaos: FAIL, ${report.violations.length} violations (seed ${seed}); replay: npm run chaos -- --seconds ${seconds} --seed ${seed}`,
    );
    const byInv = new Map<string, number>();
    for (const v of report.violations) byInv.set(v.inv, (byInv.get(v.inv) ?? 0) + 1);
    console.log(`violations by invariant: ${list(byInv)}`);
    // The first of each invariant, then the rest in order, up to 8.
    const firsts = [...byInv.keys()].map((inv) => report.violations.find((v) => v.inv === inv)!);
    const shown = [...firsts, ...report.violations.filter((v) => !firsts.includes(v))].slice(0, 8);
    for (const v of shown) {
      console.log(`\nVIOLATION ${v.inv}: ${v.msg}${v.ids.length ? ` [${v.ids.join(' ')}]` : ''}`);
      for (const e of history.around(v.ids, v.at)) console.log(`  ${formatEntry(e)}`);
    }
    if (report.violations.length > 8) console.log(`\n… and ${report.violations.length - 8} more`);
    return 1;
  } finally {
    await Promise.all(workers.map((w) => w.shutdown()));
    await api?.stop();
    await receiver?.close();
    admin$.disconnect();
    await redis.cleanup();
    fs.rmSync(modelsDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('chaos: the run could not be set up or crashed:', err);
    process.exit(2);
  },
);
