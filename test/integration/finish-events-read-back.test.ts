/**
 * `GET /v1/jobs/{id}` with `Prefer: wait` listens on the model's QueueEvents stream
 * (api/job-finish-events.ts). A stream just opened reads only events after its first read, so a
 * job that finished between the wait's first check and that read sent its event unheard: the wait
 * then held to its end (20 s in finish-notices.test.ts's poller case, now and then). The job is
 * now read back at growing intervals too, by the same read-back as the finish-notice waits
 * (api/read-back.ts), which also stops reading once a wait is over.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FinishWaits } from '../../api/finish-waits.js';
import { JobFinishEvents } from '../../api/job-finish-events.js';
import { createLogger } from '../../shared/logger.js';
import { REDIS_URL, deletePrefix, testPrefix } from '../helpers/hub.js';

const prefix = testPrefix('readback');
const events = new JobFinishEvents(
  { MODELHUB_PREFIX: prefix, REDIS_URL, REDIS_CLUSTER_NODES: undefined },
  createLogger('test', { level: 'silent' }),
  { readBackMs: 50, maxReadBackMs: 200 },
);

const notices = new FinishWaits(
  { MODELHUB_PREFIX: prefix, REDIS_URL, REDIS_CLUSTER_NODES: undefined },
  createLogger('test', { level: 'silent' }),
  { readBackMs: 50, maxReadBackMs: 200 },
);

afterAll(async () => {
  await events.close();
  await notices.close();
  await deletePrefix(prefix);
});

describe('a wait whose finishing event never comes', () => {
  it('ends once a read-back finds the job finished, not at its timeout', async () => {
    let checks = 0;
    // Finished by the third check; no event is ever sent for it.
    const isDone = async () => ++checks >= 3;
    const outcome = await Promise.race([
      events.until('m', 'job-without-event', 60_000, isDone).then(() => 'ended'),
      new Promise((r) => setTimeout(() => r('still waiting'), 20_000)),
    ]);
    expect(outcome).toBe('ended');
    expect(checks).toBe(3);
  }, 30_000);

  it('stops reading back once the wait is over, even with a read-back still under way then', async () => {
    let checks = 0;
    let answer!: (finished: boolean) => void;
    const isDone = () => {
      checks++;
      return new Promise<boolean>((r) => (answer = r));
    };
    await events.until('m', 'job-never-done', 300, isDone);
    // The first read-back answers only after the wait ended.
    answer(false);
    await new Promise((r) => setTimeout(r, 600));
    expect(checks).toBe(1);
  });
});

describe('a wait for a finish notice that never comes (api/finish-waits.ts, the same read-back)', () => {
  it('ends with the job read back once it is done', async () => {
    let checks = 0;
    const outcome = await notices.watch('call-without-notice', 60_000, async () => ++checks >= 2).done;
    expect(outcome).toEqual({ event: 'removed' });
    expect(checks).toBe(2);
  }, 30_000);

  it('stops reading back once the wait is over, even with a read-back still under way then', async () => {
    let checks = 0;
    let answer!: (finished: boolean) => void;
    const watch = notices.watch('call-never-done', 100, () => {
      checks++;
      return new Promise<boolean>((r) => (answer = r));
    });
    expect(await watch.done).toBeNull();
    answer(false);
    await new Promise((r) => setTimeout(r, 600));
    expect(checks).toBe(1);
  });
});
