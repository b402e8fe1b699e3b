/**
 * Finish notices: a worker tells the one API instance that waits for a job (or a predict entry)
 * that it finished, by appending to that instance's own stream (finishNoticesKey), instead of
 * every API instance reading every completion of every model through BullMQ's QueueEvents.
 *
 * The waiting instance names itself in the job's data (`reply_to`); the worker appends only from
 * its `completed`/`failed` events, after BullMQ recorded the finish, so a notice never announces
 * a run that did not count. A notice can still be lost (a Redis restart without persistence, a
 * worker of an earlier release that sends none, a worker killed between the finish and the
 * notice): the waiter then reads the job back (finish-waits in the API).
 */
import type { RedisClient } from '../redis/connection.js';
import { finishNoticesKey } from '../redis/keys.js';

/** What a notice says: the job (or entry) id and its finish. */
export type FinishNotice =
  { id: string; event: 'completed'; returnvalue: unknown } | { id: string; event: 'failed'; failedReason: string };

/** Notices kept per instance stream (approximately): far more than the calls one instance holds. */
const MAX_LEN = 10_000;
/** An instance's stream outlives its last notice by this long, s. */
const TTL_S = 3600;

/** Appends a notice to the waiting instance's stream; never rejects (the waiter reads the job back). */
export async function sendFinishNotice(redis: RedisClient, prefix: string, to: string, notice: FinishNotice) {
  const key = finishNoticesKey(prefix, to);
  try {
    await redis.multi().xadd(key, 'MAXLEN', '~', MAX_LEN, '*', 'n', JSON.stringify(notice)).expire(key, TTL_S).exec();
    return true;
  } catch {
    return false;
  }
}
