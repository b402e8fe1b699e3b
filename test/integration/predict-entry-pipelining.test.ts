/**
 * A coalesced entry whose calls no quota can refuse (none holds a share) is added without waiting
 * for its admission's reply: the add follows the submit's writes (the calls' record, the index, the
 * inputs) on the same connection, so Redis runs it after them and the worker finds its inputs.
 * An entry with a call that may be refused waits for the admission first, as it must.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictEntries } from '../../api/predict-entries.js';
import { loadConfig } from '../../shared/config.js';
import { ENTRY_PAYLOAD_VERSION } from '../../shared/predict/entry.js';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const MODEL = 'resnet50';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('when an entry is added', () => {
  let hub: Hub;
  let entries: PredictEntries;
  /** Whether the entry's admission had answered when its add was sent, per add. */
  const admittedAtAdd: boolean[] = [];

  beforeAll(async () => {
    hub = await startHub({
      name: 'entrypipe',
      models: MODEL,
      env: { TENANT_RATE_RPS: '0', MODELHUB_TENANT_LIMITS: JSON.stringify({ counted: { max_waiting: 10 } }) },
    });
    const ctx = hub.api.ctx;
    const config = loadConfig({ ...process.env, REDIS_URL, MODELHUB_PREFIX: hub.prefix });
    entries = new PredictEntries(ctx.jobs, ctx.redis, config, ctx.log, () => ENTRY_PAYLOAD_VERSION);
    // The admission answers late: an add sent before it answered did not wait for it.
    let admitted = true;
    const quotas = ctx.jobs.quotas;
    const admit = quotas.admitEntry.bind(quotas);
    quotas.admitEntry = async (...args) => {
      admitted = false;
      const refusals = await admit(...args);
      await sleep(150);
      admitted = true;
      return refusals;
    };
    const queue = entries.queues.get(MODEL)!;
    const add = queue.add.bind(queue);
    queue.add = ((...args: Parameters<typeof add>) => {
      admittedAtAdd.push(admitted);
      return add(...args);
    }) as typeof queue.add;
  });
  afterAll(async () => {
    await entries?.close();
    await hub?.stop();
  });

  const twoCalls = async (tenant: string | null) => {
    const image = b64(await solidImage(32, 32, [10, 200, 30]));
    return Promise.all(
      entries.submit(MODEL, [
        { tenant, input: { image } },
        { tenant, input: { image } },
      ]),
    );
  };

  it('anonymous calls with no share: before the admission answers, and each call still runs on its own input', async () => {
    const answers = await twoCalls(null);
    expect(admittedAtAdd).toEqual([false]);
    for (const a of answers) {
      expect(a.view.status).toBe('succeeded');
      expect(a.entryItems).toBe(2);
      expect(a.view.output).toMatchObject({ success: true, error_code: 0 });
    }
  }, 60_000);

  it('calls counted as waiting (a quota may refuse them): only once the admission answered', async () => {
    const answers = await twoCalls('counted');
    expect(admittedAtAdd.slice(1)).toEqual([true]);
    for (const a of answers) expect(a.view.status).toBe('succeeded');
  }, 60_000);
});
