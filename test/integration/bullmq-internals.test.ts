/**
 * BullMQ's Redis layout as shared/redis/bullmq-internals.ts states it, checked against jobs run by
 * the installed bullmq: a job's hash and lock keys, the hash fields read without loading the job
 * (`atm`, `stc`, the timestamps, the result), and the rewrite of a finished job's `data`. An
 * upgrade that changes any of them fails here.
 */
import { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { JobAccounting } from '../../shared/jobs/accounting.js';
import type { JobData, JobResult } from '../../shared/jobs/payload.js';
import { ENTRY_INPUTS_APART_VERSION, type EntryData } from '../../shared/predict/entry.js';
import {
  JOB_HASH_FIELDS,
  entryGoneOrFinished,
  entryHashKey,
  finishedEntryData,
  finishedJobData,
  jobHashKey,
  jobLockKey,
  readJobHash,
  storedData,
} from '../../shared/redis/bullmq-internals.js';
import { entryInputsKey, modelQueueName, predictQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';

const prefix = testPrefix('bullmq-internals');
const MODEL = 'm';
const connection = () => new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const redis = connection();
const queue = new Queue<JobData, JobResult>(modelQueueName(MODEL), { connection: connection(), prefix });
const lane = new Queue<EntryData>(predictQueueName(MODEL), { connection: connection(), prefix });
const accounting = new JobAccounting(redis, prefix, {
  ttlS: 60,
  retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 10, JOB_RETENTION_BYTES: 0 },
});
const closing: { close(): Promise<void> }[] = [queue, lane];

afterAll(async () => {
  for (const c of closing.reverse()) await c.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

const dataOf = (n: number): JobData => ({ v: 2, model: MODEL, input: { image: 'AAAA', top_k: n }, tenant: 't' });
const RESULT: JobResult = {
  output: { label: 'x' },
  metrics: { inference_ms: 1, preprocess_ms: 1, batch_size: 1, device: 'cpu', worker: 'w' },
};

/** Waits for the job to finish and reads it back as BullMQ does. */
async function finished(q: Queue, id: string): Promise<Job> {
  await expect.poll(async () => (await Job.fromId(q, id))?.finishedOn, { timeout: 20_000 }).toBeGreaterThan(0);
  return (await Job.fromId(q, id))!;
}

describe('BullMQ internals (shared/redis/bullmq-internals.ts)', () => {
  it('locks an active job under jobLockKey, holding its token, and stores its data at jobHashKey as storedData', async () => {
    const manual = new Worker(modelQueueName(MODEL), null, { connection: connection(), prefix, autorun: false });
    closing.push(manual);
    const data = dataOf(1);
    await queue.add('infer', data, { jobId: 'job-manual' });
    expect(jobHashKey(prefix, MODEL, 'job-manual')).toBe(queue.toKey('job-manual'));
    expect(await redis.hget(jobHashKey(prefix, MODEL, 'job-manual'), JOB_HASH_FIELDS.data)).toBe(storedData(data));

    const job = await manual.getNextJob('manual-token');
    expect(job.id).toBe('job-manual');
    expect(await redis.get(jobLockKey(prefix, MODEL, 'job-manual'))).toBe('manual-token');
    await job.moveToCompleted(RESULT, 'manual-token', false);
    // Finished: the lock is gone, the hash says so.
    expect(await redis.exists(jobLockKey(prefix, MODEL, 'job-manual'))).toBe(0);
    const hash = await readJobHash(redis, jobHashKey(prefix, MODEL, 'job-manual'));
    expect(hash?.finishedOn).toBeGreaterThan(0);
    expect(JSON.parse(hash!.returnvalue!)).toEqual(RESULT);
  });

  it('holds attempts in `atm` and stalls in `stc`, as Job.fromId reads them', async () => {
    // Fetched by hand and never renewed: its lock expires and the stalled check takes it back.
    const abandoned = new Worker(modelQueueName(MODEL), null, {
      connection: connection(),
      prefix,
      autorun: false,
      lockDuration: 500,
    });
    closing.push(abandoned);
    // (Not "stalled": a job's hash would then be the queue's own stalled set.)
    await queue.add('infer', dataOf(2), { jobId: 'job-stall' });
    expect((await abandoned.getNextJob('lost-token')).id).toBe('job-stall');

    const locks: boolean[] = [];
    const worker = new Worker<JobData, JobResult>(
      modelQueueName(MODEL),
      async (job, token) => {
        locks.push((await redis.get(jobLockKey(prefix, MODEL, job.id!))) === token);
        if (job.id === 'job-retry' && job.attemptsMade === 0) throw new Error('the first attempt fails');
        return RESULT;
      },
      { connection: connection(), prefix, stalledInterval: 300, maxStalledCount: 2 },
    );
    closing.push(worker);
    await queue.add('infer', dataOf(3), { jobId: 'job-retry', attempts: 2 });

    for (const [id, field] of [
      ['job-retry', 'attemptsMade'],
      ['job-stall', 'stalledCounter'],
    ] as const) {
      const job = await finished(queue, id);
      expect(job.returnvalue).toEqual(RESULT);
      expect(job[field]).toBeGreaterThan(0);
      const key = jobHashKey(prefix, MODEL, id);
      expect(await redis.hget(key, JOB_HASH_FIELDS.attemptsMade)).toBe(String(job.attemptsMade));
      expect(Number((await redis.hget(key, JOB_HASH_FIELDS.stalledCounter)) ?? 0)).toBe(job.stalledCounter);
      expect(await readJobHash(redis, key)).toEqual({
        timestamp: job.timestamp,
        processedOn: job.processedOn,
        finishedOn: job.finishedOn,
        returnvalue: JSON.stringify(job.returnvalue),
        failedReason: job.failedReason || undefined,
        attemptsMade: job.attemptsMade,
        stalledCounter: job.stalledCounter,
      });
    }
    // Every run the processor saw held the lock under the name jobLockKey gives.
    expect(locks.length).toBeGreaterThanOrEqual(3);
    expect(locks.every(Boolean)).toBe(true);
  });

  it("rewrites a finished job's data without its input, read back by Job.fromId", async () => {
    const job = await finished(queue, 'job-retry');
    await accounting.finish(MODEL, { id: 'job-retry', tenant: 't', dataWithoutInput: finishedJobData(job.data) });
    const after = await Job.fromId(queue, 'job-retry');
    expect(after!.data).toEqual({ ...dataOf(3), input: {}, input_dropped: true });
    expect(after!.returnvalue).toEqual(RESULT);
  });

  it("rewrites a finished v1 entry's data at entryHashKey without its inputs, read back by Job.fromId; a v2 entry's is left as it was and its inputs' key deleted", async () => {
    // v1: the items carry their inputs inside the entry's data; v2: apart, in the inputs key.
    const v1: EntryData = {
      v: ENTRY_INPUTS_APART_VERSION - 1,
      kind: 'entry',
      model: MODEL,
      tenant: null,
      input: {},
      items: [
        { id: 'e1.p0', tenant: 'a', input: { image: 'AAAA' } },
        { id: 'e1.p1', tenant: 'b', input: { image: 'BBBB' }, trace_id: 'f'.repeat(32) },
      ],
    };
    const v2: EntryData = {
      ...v1,
      v: ENTRY_INPUTS_APART_VERSION,
      items: v1.items.map((it) => ({ ...it, id: it.id.replace('e1', 'e2'), input: {} })),
    };
    await lane.add('entry', v1, { jobId: 'e1' });
    await lane.add('entry', v2, { jobId: 'e2' });
    expect(entryHashKey(prefix, MODEL, 'e1')).toBe(lane.toKey('e1'));
    expect(await entryGoneOrFinished(redis, prefix, MODEL, 'e1')).toBe(false);
    const worker = new Worker(predictQueueName(MODEL), async () => ({ v: 1, items: [] }), {
      connection: connection(),
      prefix,
    });
    closing.push(worker);
    await finished(lane, 'e1');
    await finished(lane, 'e2');
    expect(await entryGoneOrFinished(redis, prefix, MODEL, 'e1')).toBe(true);
    await redis.set(entryInputsKey(prefix, MODEL, 'e2'), JSON.stringify({ 'e2.p0': { image: 'AAAA' } }));
    expect(finishedEntryData(v2)).toBe('');
    for (const [id, data] of [
      ['e1', v1],
      ['e2', v2],
    ] as const) {
      const items = data.items.map((it) => ({ id: it.id, tenant: it.tenant, resultBytes: 0 }));
      await accounting.finishEntry(MODEL, { id, items, dataWithoutInputs: finishedEntryData(data) });
    }
    expect(await redis.exists(entryInputsKey(prefix, MODEL, 'e2'))).toBe(0);
    expect((await Job.fromId(lane, 'e1'))!.data).toEqual({
      ...v1,
      items: v1.items.map((it) => ({ ...it, input: {} })),
      input_dropped: true,
    });
    expect((await Job.fromId(lane, 'e2'))!.data).toEqual(v2);
    for (const id of ['e1', 'e2']) expect(await redis.hget(entryHashKey(prefix, MODEL, id), 'accounted')).toBe('1');
    expect(await entryGoneOrFinished(redis, prefix, MODEL, 'gone')).toBe(true);
  });

  it("removes a completed job retention pushed out as BullMQ's own bound would: no key of it left, the completed set one short", async () => {
    // Its own queue, so the count bound below sees only these jobs.
    const name = '{model.pushed}';
    const pushedQueue = new Queue<JobData, JobResult>(name, { connection: connection(), prefix });
    const worker = new Worker<JobData, JobResult>(
      name,
      async (job) => {
        await job.log('a log line: BullMQ keeps it under the job key');
        return RESULT;
      },
      { connection: connection(), prefix },
    );
    closing.push(pushedQueue, worker);
    const bound = new JobAccounting(redis, prefix, {
      ttlS: 60,
      retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 1, JOB_RETENTION_BYTES: 0 },
    });
    const model = 'pushed';
    for (const id of ['old', 'new']) {
      await pushedQueue.add('predict', dataOf(1), { jobId: id });
      const job = await finished(pushedQueue, id);
      await bound.finish(model, { id, tenant: 't', dataWithoutInput: finishedJobData(job.data) }, job.finishedOn);
    }
    expect(await pushedQueue.getJob('old')).toBeUndefined();
    expect(await pushedQueue.getJobCounts('completed')).toEqual({ completed: 1 });
    expect((await pushedQueue.getJob('new'))!.returnvalue).toEqual(RESULT);
    // Every key BullMQ wrote for the job went with it (its hash, its logs).
    const left = await redis.keys(`${prefix}:${name}:old*`);
    expect(left).toEqual([]);
    expect(await redis.keys(`${prefix}:${name}:new*`)).toEqual(
      expect.arrayContaining([jobHashKey(prefix, model, 'new'), `${jobHashKey(prefix, model, 'new')}:logs`]),
    );
  });
});
