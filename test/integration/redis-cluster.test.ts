/** The hub on a Redis Cluster: jobs, waits, cancel and the worker registry through ioredis Cluster. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { parseClusterNodes } from '../../shared/redis/connection.js';
import { modelQueueName } from '../../shared/redis/keys.js';
import { getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startPrivateCluster, type PrivateCluster } from '../helpers/redis-cluster.js';

let cluster: PrivateCluster;
let hub: Hub;
beforeAll(async () => {
  cluster = await startPrivateCluster();
  hub = await startHub({ name: 'cluster', models: 'resnet50', env: { REDIS_CLUSTER_NODES: cluster.nodes } });
});
afterAll(async () => {
  await hub?.stop();
  await cluster?.stop();
});

describe('Redis Cluster', () => {
  it('gives each model queue its own hash slot (hash tag in the queue name)', async () => {
    expect(modelQueueName('resnet50')).toBe('{model.resnet50}');
    const client = new Cluster(parseClusterNodes(cluster.nodes));
    const slot = async (key: string) => Number(await client.call('CLUSTER', 'KEYSLOT', key));
    const wait = await slot(`${hub.prefix}:${modelQueueName('resnet50')}:wait`);
    expect(await slot(`${hub.prefix}:${modelQueueName('resnet50')}:active`)).toBe(wait);
    expect(await slot(`${hub.prefix}:${modelQueueName('resnet50')}:meta`)).toBe(wait);
    expect(await slot(`${hub.prefix}:${modelQueueName('text-direction')}:wait`)).not.toBe(wait);
    client.disconnect();
  });

  it('runs jobs, waits, cancels and lists workers through the cluster', async () => {
    const image = b64(await solidImage(48, 48, [30, 90, 150]));
    expect((await getJson(`${hub.url}/readyz`)).status).toBe(200);
    const ids = await Promise.all(
      Array.from(
        { length: 20 },
        async () => (await postJson(`${hub.url}/v1/models/resnet50/jobs`, { input: { image } })).body.id,
      ),
    );
    const jobs = await Promise.all(ids.map((id) => pollJob(hub.url, id)));
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);
    const sync = await postJson(`${hub.url}/v1/models/resnet50/predict`, { image });
    expect(sync.body).toMatchObject({ success: true, class: jobs[0].output.class });
    const done = await postJson(`${hub.url}/v1/jobs/${ids[0]}/cancel`, {});
    expect(done.status).toBe(409);
    const workers = (await getJson(`${hub.url}/v1/workers`)).body.workers;
    expect(workers).toHaveLength(1);
  });

  it("counts, claims, indexes and deletes a coalesced entry's calls through the cluster (one script per entry)", async () => {
    const image = b64(await solidImage(40, 40, [120, 60, 30]));
    // The current payload (v2): its inputs key, written, read and deleted in the model's slot too.
    await hub.api.ctx.predict.fleet.refresh();
    expect(hub.api.ctx.predict.fleet.payloadVersion('resnet50')).toBe(2);
    const answers = await Promise.all(
      hub.api.ctx.predict.entries.submit(
        'resnet50',
        [0, 1, 2].map(() => ({ tenant: null, input: { image } })),
      ),
    );
    expect(answers.map((a) => a.view.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(answers.map((a) => a.entryItems)).toEqual([3, 3, 3]);
    const [first, second] = answers.map((a) => a.view.id);
    expect((await getJson(`${hub.url}/v1/jobs/${first}`)).body).toMatchObject({ status: 'succeeded' });
    const deleted = await fetch(`${hub.url}/v1/jobs/${first}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect((await getJson(`${hub.url}/v1/jobs/${first}`)).status).toBe(404);
    expect((await getJson(`${hub.url}/v1/jobs/${second}`)).body).toMatchObject({ status: 'succeeded' });
  });
});
