/**
 * The fault schedule: one seeded stream picks each fault and how long it lasts, one after the
 * other, until the run's end. Every fault is logged in the history with its target.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { History } from './history.js';
import type { Rng } from './prng.js';
import { killClientsOf, type PrivateRedis, type SupervisedWorker } from './processes.js';
import type { ChaosReceiver } from './receiver.js';

export type FaultName =
  | 'worker-kill'
  | 'worker-stop'
  | 'redis-restart'
  | 'client-kill-api'
  | 'client-kill-worker'
  | 'receiver-fail'
  | 'receiver-slow'
  | 'receiver-timeout'
  | 'webhook-queue-trim';

const WEIGHTS: Record<FaultName, number> = {
  'worker-kill': 2,
  'worker-stop': 2,
  'redis-restart': 1,
  'client-kill-api': 1.5,
  'client-kill-worker': 1.5,
  'receiver-fail': 1,
  'receiver-slow': 1,
  'receiver-timeout': 1,
  'webhook-queue-trim': 1.5,
};

export interface FaultTargets {
  redis: PrivateRedis;
  redisPort: number;
  admin: Redis;
  apiPid: number;
  workers: SupervisedWorker[];
  receiver: ChaosReceiver;
  lockMs: number;
  /** The webhook events' queue (trimmed by the `webhook-queue-trim` fault). */
  webhooks: Queue;
}

/** Windows (ms since start) during which Redis was down or its clients were being cut. */
export interface RedisWindow {
  from: number;
  to: number;
  what: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let receiverTimer: NodeJS.Timeout | null = null;

export async function faultLoop(
  rng: Rng,
  history: History,
  t: FaultTargets,
  until: number,
  windows: RedisWindow[],
): Promise<void> {
  // Let the workload start before the first fault.
  await sleep(rng.int(500, 2000));
  while (history.now() < until) {
    const fault = rng.weighted(WEIGHTS);
    await inject(fault, rng, history, t, windows);
    await sleep(rng.int(800, 3000));
  }
  while (receiverTimer) await sleep(100);
}

async function inject(
  fault: FaultName,
  rng: Rng,
  history: History,
  t: FaultTargets,
  windows: RedisWindow[],
): Promise<void> {
  const upWorkers = t.workers.filter((w) => w.state === 'up');
  switch (fault) {
    case 'worker-kill': {
      if (upWorkers.length === 0) return;
      const w = rng.pick(upWorkers);
      const pid = w.signal('SIGKILL');
      history.add('fault', fault, `worker ${w.index} pid ${pid}`);
      return;
    }
    case 'worker-stop': {
      if (upWorkers.length === 0) return;
      const w = rng.pick(upWorkers);
      const ms = t.lockMs + rng.int(500, 2500);
      const pid = w.signal('SIGSTOP');
      history.add('fault', fault, `worker ${w.index} pid ${pid} for ${ms} ms (lock ${t.lockMs} ms)`);
      await sleep(ms);
      w.signal('SIGCONT');
      history.add('note', 'worker-cont', `worker ${w.index} pid ${pid}`);
      return;
    }
    case 'redis-restart': {
      const down = rng.int(200, 2000);
      const from = history.now();
      history.add('fault', fault, `down for ${down} ms`);
      await t.redis.stop();
      await sleep(down);
      await t.redis.start();
      windows.push({ from, to: history.now(), what: fault });
      history.add('note', 'redis-up', `after ${history.now() - from} ms`);
      return;
    }
    case 'client-kill-api':
    case 'client-kill-worker': {
      const targets =
        fault === 'client-kill-api'
          ? [{ name: 'api', pid: t.apiPid }]
          : upWorkers.map((w) => ({ name: `worker ${w.index}`, pid: w.proc?.child.pid }));
      if (targets.length === 0) return;
      const target = rng.pick(targets);
      if (target.pid === undefined) return;
      const from = history.now();
      let killed = 0;
      try {
        killed = await killClientsOf(t.admin, t.redisPort, target.pid);
      } catch (err) {
        history.add('note', 'client-kill-failed', (err as Error).message);
      }
      windows.push({ from, to: history.now() + 1000, what: fault });
      history.add('fault', fault, `${target.name} pid ${target.pid}: ${killed} connections`);
      return;
    }
    case 'webhook-queue-trim': {
      // The queue forgets delivered events, as its retention bound (10,000 events) does on a busy
      // hub: an event enqueued again later (a job rerun after a stall sends \`start\` again, a
      // reconciled finish \`completed\`) must still not be delivered twice.
      let removed = 0;
      try {
        removed = (await t.webhooks.clean(0, 100_000, 'completed')).length;
      } catch (err) {
        history.add('note', 'trim-failed', (err as Error).message);
      }
      history.add('fault', fault, `${removed} delivered events forgotten`);
      return;
    }
    case 'receiver-fail':
    case 'receiver-slow':
    case 'receiver-timeout': {
      // In the background: a receiver fault overlaps the faults that follow it (a Redis restart
      // or a cut connection while a delivery is in flight).
      const ms = rng.int(500, 4000);
      t.receiver.mode = fault === 'receiver-fail' ? 'fail' : fault === 'receiver-slow' ? 'slow' : 'timeout';
      history.add('fault', fault, `for ${ms} ms`);
      if (receiverTimer) clearTimeout(receiverTimer);
      receiverTimer = setTimeout(() => {
        receiverTimer = null;
        t.receiver.mode = 'ok';
        history.add('note', 'receiver-ok', '');
      }, ms);
      return;
    }
  }
}
