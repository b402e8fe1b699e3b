/**
 * Predict entry payloads across a rolling upgrade (issue 22): the API writes v2 (inputs in a key of
 * their own) only while every live worker reading entries for the model reads v2, and v1 (inputs
 * inside the entry) while any reads only v1; a current worker answers both; a v2 entry's inputs
 * key is gone once the entry finished; a v2 entry whose inputs expired fails its calls alone; an
 * entry without waiting marks (a previous-release API's) has every item claimed.
 * Entries go through the API's PredictEntries directly, so which calls share one never depends on
 * timing; the fleet is what the worker registry says, written here as a worker of each release
 * would write its heartbeat.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryData } from '../../shared/predict/entry.js';
import { accountingKeys, entryInputsKey, predictQueueName } from '../../shared/redis/keys.js';
import { publishHeartbeat, removeWorker, type WorkerInfo } from '../../shared/worker-registry.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const MODEL = 'resnet50';

/** A live worker's heartbeat, reading entries up to `entries` (absent: a release before entries). */
function heartbeat(id: string, entries: number): WorkerInfo {
  return {
    id,
    device: 'cpu',
    models: [MODEL],
    pid: 1,
    host: 'elsewhere',
    version: 'test',
    started_at: new Date().toISOString(),
    heartbeat_at: Date.now(),
    heartbeat_ms: 60_000,
    batching: {},
    entries,
    load: {},
  };
}

describe('predict entry payload versions in a mixed fleet', () => {
  let hub: Hub;
  let images: string[];

  beforeAll(async () => {
    images = await Promise.all(
      [
        [200, 40, 90],
        [10, 220, 30],
        [90, 90, 250],
      ].map(async (rgb) => b64(await solidImage(48, 40, rgb as [number, number, number]))),
    );
    hub = await startHub({
      name: 'entryversions',
      models: MODEL,
      // No worker yet: the entries wait on the lane, where their payloads are read.
      workers: 0,
      env: { TENANT_RATE_RPS: '0', MODELHUB_RECONCILE_PERIOD_MS: '0' },
    });
  }, 60_000);
  afterAll(async () => hub?.stop());

  it('writes v1 while a v1 reader serves the model, v2 once none does; a current worker answers both', async () => {
    const { redis } = hub.api.ctx;
    const { fleet, entries } = hub.api.ctx.predict;
    const lane = new Queue<EntryData>(predictQueueName(MODEL), { connection: redis, prefix: hub.prefix });
    const waitingEntry = async (seen: number): Promise<EntryData & { id: string }> => {
      await expect.poll(() => lane.getWaitingCount(), { timeout: 10_000 }).toBe(seen + 1);
      const job = (await lane.getWaiting()).find((j) => !ids.includes(j.id!))!;
      ids.push(job.id!);
      return { ...job.data, id: job.id! };
    };
    const ids: string[] = [];
    const send = () =>
      entries.submit(
        MODEL,
        images.map((image, k) => ({ tenant: `t${k}`, input: { image } })),
      );

    // A worker of the previous entry release (v1) and a current one (v2) serve the model; each
    // counts toward the backlog a coalesced entry holds for (a full batch per reader).
    await fleet.refresh();
    const readersBefore = fleet.readers(MODEL);
    await publishHeartbeat(redis, hub.prefix, heartbeat('old-reader', 1));
    await publishHeartbeat(redis, hub.prefix, heartbeat('new-reader', 2));
    await fleet.refresh();
    expect(fleet.payloadVersion(MODEL)).toBe(1);
    expect(fleet.readers(MODEL)).toBe(readersBefore + 2);
    const v1Answers = send();
    const v1 = await waitingEntry(0);
    expect(v1.v).toBe(1);
    expect(v1.items.map((it) => it.input)).toEqual(images.map((image) => ({ image })));
    expect(await redis.exists(entryInputsKey(hub.prefix, MODEL, v1.id))).toBe(0);

    // The v1 reader is gone: the inputs now live apart, the entry carries none.
    await removeWorker(redis, hub.prefix, 'old-reader');
    await fleet.refresh();
    expect(fleet.payloadVersion(MODEL)).toBe(2);
    expect(fleet.readers(MODEL)).toBe(readersBefore + 1);
    const v2Answers = send();
    const v2 = await waitingEntry(1);
    expect(v2.v).toBe(2);
    expect(v2.items.map((it) => it.input)).toEqual([{}, {}, {}]);
    const stored = JSON.parse((await redis.get(entryInputsKey(hub.prefix, MODEL, v2.id)))!) as Record<string, unknown>;
    expect(stored).toEqual(Object.fromEntries(v2.items.map((it, k) => [it.id, { image: images[k] }])));
    expect(await redis.ttl(entryInputsKey(hub.prefix, MODEL, v2.id))).toBeGreaterThan(0);

    // A v2 entry whose inputs expired before any worker took it (they live retention plus an hour).
    const expiredAnswers = send();
    const expired = await waitingEntry(2);
    await redis.del(entryInputsKey(hub.prefix, MODEL, expired.id));
    // Each tenant's calls count as waiting (the default max_waiting), and the entries say so.
    expect(v2.marks_waiting).toBe(true);
    expect(v2.items.map((it) => it.counted_waiting)).toEqual([true, true, true]);
    const usage = accountingKeys(hub.prefix, MODEL).usage;
    const waiting = () => redis.hmget(usage, 'w|t0', 'w|t1', 'w|t2');
    expect(await waiting()).toEqual(['3', '3', '3']);
    // As an API of the previous release wrote it: no marks, so the worker claims every item.
    const unmarked = (await lane.getJob(v1.id))!;
    await unmarked.updateData({
      ...v1,
      marks_waiting: undefined,
      items: v1.items.map((it) => ({ ...it, counted_waiting: undefined })),
    });
    await lane.close();
    await removeWorker(redis, hub.prefix, 'new-reader');

    await hub.addWorker();
    const [fromV1, fromV2, fromExpired] = await Promise.all(
      [v1Answers, v2Answers, expiredAnswers].map((answers) => Promise.all(answers)),
    );
    // Both payloads give every call its own answer, the same for the same image.
    expect(fromV1.map((a) => a.view.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(fromV2.map((a) => a.view.output)).toEqual(
      fromV1.map((a) => ({ ...a.view.output, request_id: expect.stringMatching(/\.p\d$/) })),
    );
    expect(fromV2.map((a) => (a.view.output as { request_id: string }).request_id)).toEqual(
      v2.items.map((it) => it.id),
    );
    expect(fromV1.map((a) => a.entryItems)).toEqual([3, 3, 3]);
    // The expired entry's calls fail alone, as calls past their deadline do.
    expect(fromExpired.map((a) => a.view.status)).toEqual(['failed', 'failed', 'failed']);
    expect(fromExpired[0].view.output).toMatchObject({ success: false, error_code: 2002 });
    // Every call left its tenant's waiting count, the unmarked entry's too.
    expect(await waiting()).toEqual([null, null, null]);
    // A finished entry's inputs are deleted with it.
    await expect.poll(() => redis.exists(entryInputsKey(hub.prefix, MODEL, v2.id)), { timeout: 10_000 }).toBe(0);
  }, 90_000);
});
