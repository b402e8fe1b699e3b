/**
 * Exactly right under races and crashes. Each test forces one interleaving of the API, a worker
 * and the accounting scripts, by playing the worker's part itself (a BullMQ Worker with no
 * processor: fetch, claim, complete, record, each step when the test says), and checks what a
 * user relies on: a finished job's result is never taken by a cancel, counts never drift, a
 * worker that dies after completing a job still gets it recorded and its webhook sent.
 */
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobAccounting } from '../../shared/jobs/accounting.js';
import type { JobData, JobResult } from '../../shared/jobs/payload.js';
import { sideKeyTtlS } from '../../shared/jobs/retention.js';
import { accountingKeys, modelQueueName } from '../../shared/redis/keys.js';
import { jobHashKey } from '../../shared/redis/bullmq-internals.js';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const KEY = 'alice-key-exactness-test';
const MODEL = 'text-direction';
const SECRET = 'whsec_' + Buffer.from('exactness test secret, 32 bytes').toString('base64');
const headers = { Authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

let hub: Hub;
let receiver: Receiver;
let image: string;
let redis: Redis;
/** The worker's side: its own connection and accounting, as a worker process has. */
let worker: Worker<JobData, JobResult>;
let workerAccounting: JobAccounting;
let beforeCancelClaim: ((id: string) => Promise<void>) | null = null;

beforeAll(async () => {
  image = b64(await solidImage(64, 48, [30, 60, 90]));
  receiver = await startReceiver();
  hub = await startHub({
    name: 'exact',
    models: MODEL,
    // No worker process: the test plays the worker, step by step.
    workers: 0,
    env: {
      MODELHUB_API_KEYS: `${KEY}:alice`,
      TENANT_RATE_RPS: '0',
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
      // The tests run the reconciler's passes themselves.
      MODELHUB_RECONCILE_PERIOD_MS: '0',
    },
    jobHooks: { beforeCancelClaim: async (id) => beforeCancelClaim?.(id) },
  });
  redis = new Redis(REDIS_URL);
  worker = new Worker<JobData, JobResult>(modelQueueName(MODEL), null, {
    connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
    prefix: hub.prefix,
    lockDuration: 60_000,
  });
  workerAccounting = new JobAccounting(redis, hub.prefix, { ttlS: sideKeyTtlS(hub.config), retention: hub.config });
});

afterAll(async () => {
  await worker?.close();
  await receiver?.close();
  redis?.disconnect();
  await hub?.stop();
});

async function submit(extra: Record<string, unknown> = {}): Promise<string> {
  const r = await fetch(`${hub.url}/v1/models/${MODEL}/jobs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ input: { image }, ...extra }),
  });
  expect(r.status).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

const call = async (method: string, path: string) => {
  const r = await fetch(`${hub.url}${path}`, { method, headers });
  return { status: r.status, body: (await r.json()) as any };
};

const usage = async () => (await call('GET', '/v1/usage')).body.models[MODEL];

/** The worker fetches the next job (it is now active, locked with `token`) and claims it. */
async function fetchAndClaim(token: string): Promise<Job<JobData, JobResult>> {
  const job = (await worker.getNextJob(token))!;
  expect(job).toBeDefined();
  expect(await workerAccounting.claimForRun(MODEL, job.id!)).toBe('running');
  return job;
}

const RESULT: JobResult = {
  output: { class: 0, class_name: '0', score: 0.9 },
  metrics: { inference_ms: 1, preprocess_ms: 1, batch_size: 1, device: 'cpu', worker: 'test' },
};

/** What a worker records once BullMQ has completed the job (QueueConsumer.finished). */
const recordFinish = (job: Job<JobData, JobResult>) =>
  workerAccounting.finish(MODEL, {
    id: job.id!,
    tenant: job.data.tenant,
    dataWithoutInput: JSON.stringify({ ...job.data, input: {}, input_dropped: true }),
  });

const resultBytes = (id: string) => redis.hstrlen(jobHashKey(hub.prefix, MODEL, id), 'returnvalue');

describe('a cancel racing a completion', () => {
  it('loses: the job stays succeeded with its output, and its stored bytes are what its result holds', async () => {
    const id = await submit();
    const job = await fetchAndClaim('t1');
    expect(job.id).toBe(id);
    // The cancel reads the job as running; then, before its claim, the worker completes and
    // records the job (BullMQ's moveToCompleted removes the lock).
    beforeCancelClaim = async () => {
      await job.moveToCompleted(RESULT, 't1', false);
      await recordFinish(job);
    };
    const cancel = await call('POST', `/v1/jobs/${id}/cancel`);
    beforeCancelClaim = null;
    expect(cancel.status).toBe(409);
    expect(cancel.body).toMatchObject({ success: false, error_code: 1301 });
    expect(cancel.body.error_msg).toMatch(/already finished/);
    const read = await call('GET', `/v1/jobs/${id}`);
    expect(read.body.status).toBe('succeeded');
    expect(read.body.output).toMatchObject({ success: true, class_name: '0', request_id: id });
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: await resultBytes(id) } });
    await call('DELETE', `/v1/jobs/${id}`);
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: 0 } });
  });
});

describe('the finish script run twice', () => {
  it('changes nothing the second time (a resend after a lost reply)', async () => {
    const id = await submit();
    const job = await fetchAndClaim('t2');
    expect(job.id).toBe(id);
    await job.moveToCompleted(RESULT, 't2', false);
    await recordFinish(job);
    const keys = accountingKeys(hub.prefix, MODEL);
    const once = { usage: await redis.hgetall(keys.usage), retained: await redis.zrange(keys.retained, 0, -1) };
    await recordFinish(job);
    expect(await redis.hgetall(keys.usage)).toEqual(once.usage);
    expect(await redis.zrange(keys.retained, 0, -1)).toEqual(once.retained);
    expect(Number(once.usage['s|alice'])).toBe(await resultBytes(id));
    await call('DELETE', `/v1/jobs/${id}`);
  });
});

describe('a job deleted between its completion and its finish', () => {
  it('gives its input back: usage returns to zero once the late finish runs', async () => {
    const id = await submit();
    const job = await fetchAndClaim('t3');
    await job.moveToCompleted(RESULT, 't3', false);
    // The tenant deletes the job before the worker records it.
    expect((await call('DELETE', `/v1/jobs/${id}`)).status).toBe(200);
    await recordFinish(job);
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: 0 } });
    expect(await redis.hlen(accountingKeys(hub.prefix, MODEL).records)).toBe(0);
  });
});

describe('a worker killed between completing a job and recording it', () => {
  it('leaves a record the reconciler settles: input dropped, result counted, the completed webhook sent once', async () => {
    const id = await submit({ webhook: receiver.url, webhook_events_filter: ['completed'] });
    const input = (await usage()).stored_bytes.used;
    expect(input).toBeGreaterThan(image.length);
    const job = await fetchAndClaim('t4');
    await job.moveToCompleted(RESULT, 't4', false);
    // The worker dies here: nothing records the job, nothing enqueues its event.
    expect((await usage()).stored_bytes.used).toBe(input);
    await hub.api.reconciler.reconcileAll();
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: await resultBytes(id) } });
    const data = JSON.parse((await redis.hget(jobHashKey(hub.prefix, MODEL, id), 'data'))!);
    expect(data).toMatchObject({ input: {}, input_dropped: true });
    const [delivery] = await receiver.waitFor(1);
    expect(delivery.json).toMatchObject({ id, status: 'succeeded' });
    // A second pass finds nothing to settle and sends nothing again.
    await hub.api.reconciler.reconcileAll();
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.deliveries.filter((d) => d.json.id === id)).toHaveLength(1);
    await call('DELETE', `/v1/jobs/${id}`);
  });

  it('an API that dies between counting a submit and adding its job: the record is given back after the grace', async () => {
    // What the API's submit script leaves when the process dies before queue.add.
    await workerAccounting.submit(
      MODEL,
      'never-added',
      'alice',
      { countWaiting: true, inputBytes: 1000 },
      {
        maxWaiting: 0,
        maxStoredBytes: 0,
      },
    );
    expect(await usage()).toMatchObject({ waiting: { used: 1 }, stored_bytes: { used: 1000 } });
    // Younger than the grace: its add may still be under way.
    await hub.api.reconciler.reconcileAll();
    expect(await usage()).toMatchObject({ waiting: { used: 1 }, stored_bytes: { used: 1000 } });
    const records = accountingKeys(hub.prefix, MODEL).records;
    const record = (await redis.hget(records, 'never-added'))!.split('|');
    record[4] = String(Date.now() - 60_000);
    await redis.hset(records, 'never-added', record.join('|'));
    await hub.api.reconciler.reconcileAll();
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: 0 } });
  });
});

describe('webhook events', () => {
  it('are delivered once per job even when enqueued again after the queue forgot the first delivery', async () => {
    const id = await submit({ webhook: receiver.url, webhook_events_filter: ['completed'] });
    const job = await fetchAndClaim('t5');
    await job.moveToCompleted(RESULT, 't5', false);
    const before = receiver.deliveries.length;
    const webhooks = hub.api.ctx.jobs.webhooks;
    const { enqueueWebhookEvent } = await import('../../shared/webhooks/events.js');
    const subject = { id, model: MODEL, webhook: job.data.webhook };
    await enqueueWebhookEvent(webhooks, subject, 'completed');
    await receiver.waitFor(before + 1);
    await expect
      .poll(async () => (await webhooks.getJob(`${id}.completed`))?.finishedOn, { timeout: 5000 })
      .toBeTruthy();
    // The webhook queue's own retention drops the delivered event; a stale worker enqueues it again.
    await webhooks.remove(`${id}.completed`);
    await enqueueWebhookEvent(webhooks, subject, 'completed');
    await expect
      .poll(async () => (await webhooks.getJob(`${id}.completed`))?.finishedOn, { timeout: 5000 })
      .toBeTruthy();
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.deliveries.filter((d) => d.json.id === id)).toHaveLength(1);
    await recordFinish(job);
    await call('DELETE', `/v1/jobs/${id}`);
  });
});
