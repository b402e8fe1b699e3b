/**
 * The run/cancel claim: one atomic script on each side decides, so a job is never both canceled
 * and run, and a cancel never wins against a job that has finished.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobAccounting } from '../../shared/jobs/accounting.js';
import { jobHashKey, jobLockKey } from '../../shared/redis/bullmq-internals.js';
import { REDIS_URL, deletePrefix, getJson, pollJob, postJson, startHub, testPrefix, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

describe('run and cancel claims', () => {
  const prefix = testPrefix('claims');
  // A worker's connection and the API's: what decides must be Redis, not one connection's order.
  const workerSide = new Redis(REDIS_URL);
  const apiSide = new Redis(REDIS_URL);
  const worker = new JobAccounting(workerSide, prefix, {
    ttlS: 60,
    retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 10, JOB_RETENTION_BYTES: 0 },
  });
  const api = new JobAccounting(apiSide, prefix, {
    ttlS: 60,
    retention: { JOB_RETENTION_S: 60, JOB_RETENTION_COUNT: 10, JOB_RETENTION_BYTES: 0 },
  });
  afterAll(async () => {
    await deletePrefix(prefix);
    workerSide.disconnect();
    apiSide.disconnect();
  });

  /** A queued job as BullMQ holds it, counted for tenant "t" (one waiting job, 100 input bytes). */
  async function queued(id: string): Promise<void> {
    await apiSide.hset(jobHashKey(prefix, 'm', id), 'data', '{}', 'timestamp', Date.now());
    await api.submit('m', id, 't', { countWaiting: true, inputBytes: 100 }, { maxWaiting: 0, maxStoredBytes: 0 });
  }
  /** What BullMQ's moveToActive does: the job is locked by the worker that fetched it. */
  const fetched = (id: string) => workerSide.set(jobLockKey(prefix, 'm', id), 'token');

  it('a worker that claims first keeps the job: the cancel answers "running", the counts move once', async () => {
    await queued('a');
    await fetched('a');
    expect(await worker.claimForRun('m', 'a')).toBe('running');
    expect(await api.usage('m', 't')).toEqual({ waiting: 0, storedBytes: 100 });
    expect(await api.claimForCancel('m', 'a')).toBe('running');
    expect(await api.usage('m', 't')).toEqual({ waiting: 0, storedBytes: 100 });
    // A retried job claims "running" again and goes on.
    expect(await worker.claimForRun('m', 'a')).toBe('running');
  });

  it('a cancel that claims first wins: the worker that fetched the job finds it canceled', async () => {
    await queued('b');
    await fetched('b');
    expect(await api.claimForCancel('m', 'b')).toBe('canceled');
    expect(await api.usage('m', 't')).toEqual({ waiting: 0, storedBytes: 100 });
    expect(await worker.claimForRun('m', 'b')).toBe('canceled');
    expect(await api.claimForCancel('m', 'b')).toBe('canceled');
    expect(await api.usage('m', 't')).toEqual({ waiting: 0, storedBytes: 100 });
  });

  it('a cancel of a job queued past its deadline claims it "expired": the worker that fetched it finds that, not "canceled"', async () => {
    await queued('e');
    await fetched('e');
    expect(await api.claimForCancel('m', 'e', 'expired')).toBe('expired');
    // The worker fails it with the deadline's error (queue-consumer.ts), as its readers were told.
    expect(await worker.claimForRun('m', 'e')).toBe('expired');
    // A later cancel (or DELETE) finds the claim as it was taken.
    expect(await api.claimForCancel('m', 'e')).toBe('expired');
    expect(await api.usage('m', 't')).toEqual({ waiting: 0, storedBytes: 100 });
  });

  it('a "running" claim left by an earlier attempt (no lock held) does not stop a cancel', async () => {
    await queued('c');
    expect(await worker.claimForRun('m', 'c')).toBe('running');
    // The attempt failed and the job waits for its retry: no worker holds its lock.
    expect(await api.claimForCancel('m', 'c')).toBe('canceled');
    expect(await worker.claimForRun('m', 'c')).toBe('canceled');
  });

  it('a cancel never wins against a finished job, lock or no lock, and changes nothing', async () => {
    await queued('d');
    expect(await worker.claimForRun('m', 'd')).toBe('running');
    // BullMQ's moveToFinished: the lock goes, finishedOn is set.
    await workerSide.hset(jobHashKey(prefix, 'm', 'd'), 'finishedOn', Date.now(), 'returnvalue', '"r"');
    const before = await api.usage('m', 't');
    expect(await api.claimForCancel('m', 'd')).toBe('finished');
    expect(await api.usage('m', 't')).toEqual(before);
    await workerSide.del(jobHashKey(prefix, 'm', 'd'));
    expect(await api.claimForCancel('m', 'd')).toBe('gone');
  });

  it('racing claims over two connections agree on one winner per job, and each job leaves the waiting count once', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `r${i}`);
    const storedBefore = (await api.usage('m', 't')).storedBytes;
    for (const id of ids) {
      await queued(id);
      await fetched(id);
    }
    const outcomes = await Promise.all(
      ids.map(async (id) => {
        const [w, c] = await Promise.all([worker.claimForRun('m', id), api.claimForCancel('m', id)]);
        return `${w}/${c}`;
      }),
    );
    // Either the worker claimed first (the cancel sees its lock) or the cancel did (the worker sees its claim).
    for (const o of outcomes) expect(['running/running', 'canceled/canceled']).toContain(o);
    const canceled = outcomes.filter((o) => o === 'canceled/canceled').length;
    // Every raced job left the waiting count; the inputs of those that run stay counted.
    expect((await api.usage('m', 't')).waiting).toBe(0);
    expect((await api.usage('m', 't')).storedBytes).toBe(storedBefore + 100 * (ids.length - canceled));
  });
});

describe('a job canceled after a worker fetched it', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({ name: 'claimjob', models: 'resnet50', workers: 0 });
  });
  afterAll(async () => hub?.stop());

  it('is dropped by the worker unrun and reads canceled', async () => {
    const image = b64(await solidImage(32, 32, [9, 99, 199]));
    const { body } = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
    // The cancel's claim lands, but (as if a worker had fetched the job in that instant) the
    // job stays in the queue; the worker must still not run it.
    const redis = new Redis(REDIS_URL);
    const accounting = new JobAccounting(redis, hub.prefix, { ttlS: 60, retention: hub.config });
    expect(await accounting.claimForCancel('resnet50', body.id)).toBe('canceled');
    redis.disconnect();
    await hub.addWorker(['--device', 'cpu', '--models', 'resnet50']);
    const job = await pollJob(hub.url, body.id);
    expect(job).toMatchObject({ status: 'canceled', output: { success: false, error_code: 2003 } });
    expect(job.metrics).toBeUndefined();
    const other = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } }, { Prefer: 'wait=30' });
    expect(other.body.status).toBe('succeeded');
    expect((await postJson(`${hub.url}/v1/jobs/${other.body.id}/cancel`, {})).status).toBe(409);
    expect((await getJson(`${hub.url}/v1/jobs/${body.id}`)).body.status).toBe('canceled');
  });
});
