/** The run/cancel claim: one SET NX decides, so a job is never both canceled and run. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimForCancel, claimForRun } from '../../shared/redis/claims.js';
import { modelQueueName } from '../../shared/redis/keys.js';
import { REDIS_URL, deletePrefix, getJson, pollJob, postJson, startHub, testPrefix, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

describe('run and cancel claims', () => {
  const prefix = testPrefix('claims');
  const redis = new Redis(REDIS_URL);
  afterAll(async () => {
    await deletePrefix(prefix);
    redis.disconnect();
  });

  const lock = (id: string) => `${prefix}:${modelQueueName('m')}:${id}:lock`;

  it('a cancel loses to a worker holding the job, and wins before one starts', async () => {
    await redis.set(lock('a'), 'token');
    expect(await claimForRun(redis, prefix, 'm', 'a', 60)).toBe('running');
    expect(await claimForCancel(redis, prefix, 'm', 'a', 60)).toBe('running');
    expect(await claimForCancel(redis, prefix, 'm', 'b', 60)).toBe('canceled');
    expect(await claimForRun(redis, prefix, 'm', 'b', 60)).toBe('canceled');
    // A retried job claims "running" again and goes on.
    expect(await claimForRun(redis, prefix, 'm', 'a', 60)).toBe('running');
  });

  it('a "running" claim left by an earlier attempt (no lock held) does not stop a cancel', async () => {
    expect(await claimForRun(redis, prefix, 'm', 'c', 60)).toBe('running');
    // The attempt failed and the job waits for its retry: no worker holds its lock.
    expect(await claimForCancel(redis, prefix, 'm', 'c', 60)).toBe('canceled');
    expect(await claimForRun(redis, prefix, 'm', 'c', 60)).toBe('canceled');
  });

  it('racing claims agree on one winner per job (the worker holds the lock when it claims)', async () => {
    for (let i = 0; i < 50; i++) {
      await redis.set(lock(`r${i}`), 'token');
      const [w, c] = await Promise.all([
        claimForRun(redis, prefix, 'm', `r${i}`, 60),
        claimForCancel(redis, prefix, 'm', `r${i}`, 60),
      ]);
      expect(w).toBe(c);
    }
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
    expect(await claimForCancel(redis, hub.prefix, 'resnet50', body.id, 60)).toBe('canceled');
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
