/**
 * Upgrades do not lose work: jobs queued by the previous release (0.1.0) — its payload shape
 * (no version field), its key names and job options, written here literally rather than through
 * today's helpers — are found, run and canceled by the current API and worker.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

/** Exactly what 0.1.0's API did on submit (api/job-service.ts at d217431). */
async function enqueueAsPreviousRelease(redis: Redis, prefix: string, model: string, input: Record<string, unknown>) {
  const queue = new Queue(`{model.${model}}`, {
    connection: redis,
    prefix,
    defaultJobOptions: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: 86400, count: 10_000 },
      removeOnFail: { age: 86400, count: 10_000 },
    },
  });
  const id = randomUUID();
  const now = Date.now();
  await redis.set(
    `${prefix}:jobindex:${id}`,
    JSON.stringify({ model, tenant: null, created_at: now }),
    'EX',
    86400 + 3600,
  );
  await queue.add(
    'infer',
    { model, input, tenant: null, deadline_at: now + 600_000 },
    { jobId: id, timestamp: now, priority: 5 },
  );
  await queue.close();
  return id;
}

describe('jobs queued by the previous release', () => {
  let hub: Hub;
  const redis = new Redis(REDIS_URL);
  let image: string;
  beforeAll(async () => {
    image = b64(await solidImage(40, 30, [10, 120, 230]));
    hub = await startHub({ name: 'upgrade', models: 'resnet50', workers: 0 });
  });
  afterAll(async () => {
    await hub?.stop();
    redis.disconnect();
  });

  it('are found while queued, canceled through the new API, and run to the same result as new jobs', async () => {
    const oldJob = await enqueueAsPreviousRelease(redis, hub.prefix, 'resnet50', { image });
    const oldCanceled = await enqueueAsPreviousRelease(redis, hub.prefix, 'resnet50', { image });
    expect((await getJson(`${hub.url}/v1/jobs/${oldJob}`)).body).toMatchObject({
      id: oldJob,
      model: 'resnet50',
      status: 'queued',
    });
    const cancel = await postJson(`${hub.url}/v1/jobs/${oldCanceled}/cancel`, {});
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('canceled');

    const fresh = await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } });
    expect(fresh.status).toBe(202);
    await hub.addWorker();

    const done = await pollJob(hub.url, oldJob);
    const reference = await pollJob(hub.url, fresh.body.id);
    expect(done.status).toBe('succeeded');
    expect(done.output).toMatchObject({ success: true, error_code: 0, request_id: oldJob });
    expect(done.output.class).toBe(reference.output.class);
    expect(done.output.class_name).toBe(reference.output.class_name);
    expect((await getJson(`${hub.url}/v1/jobs/${oldCanceled}`)).body.status).toBe('canceled');
  });
});
