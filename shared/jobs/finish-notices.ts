/**
 * Finish notices: a worker tells the one API instance that waits for a job (or a predict entry)
 * that it finished, instead of every API instance reading every completion of every model through
 * BullMQ's QueueEvents.
 *
 * The waiting instance names itself in the job's data (`reply_to`); the worker tells it only from
 * its `completed`/`failed` events, after BullMQ recorded the finish, so a notice never announces
 * a run that did not count. The notice is published on the instance's own channel
 * (finishNoticesChannel): one PUBLISH, pushed to the instance's subscribed connection, and nothing
 * stored. The stream it replaced (append, TTL refresh, a blocking XREAD re-sent per wake-up, and
 * each notice's copy of the answer kept until trimmed) cost Redis more per entry for a durability
 * the waiter never needed: a notice can be lost either way (a Redis restart without persistence,
 * a worker of an earlier release that sends none, a worker killed between the finish and the
 * notice, and now an instance whose subscription is reconnecting), and the waiter then reads the
 * job back (api/finish-waits.ts).
 *
 * An API of the previous release names itself without the `channel:` form and reads a stream
 * (finishNoticesKey): a worker of this release still appends there for it, so workers can be
 * rolled first with every call answered by its notice.
 */
import type { RedisClient } from '../redis/connection.js';
import { finishNoticesChannel, finishNoticesKey } from '../redis/keys.js';

/** What a notice says: the job (or entry) id and its finish. */
export type FinishNotice =
  { id: string; event: 'completed'; returnvalue: unknown } | { id: string; event: 'failed'; failedReason: string };

const CHANNEL_FORM = 'channel:';

/** The `reply_to` this release's API writes: its instance, told over its channel. */
export const channelReplyTo = (instance: string) => `${CHANNEL_FORM}${instance}`;

/** The previous release's stream: notices kept per instance (approximately), and its TTL, s. */
const LEGACY_STREAM_MAX_LEN = 10_000;
const LEGACY_STREAM_TTL_S = 3600;

/** Tells the waiting instance `replyTo` of a finish; never rejects (the waiter reads the job back). */
export async function sendFinishNotice(redis: RedisClient, prefix: string, replyTo: string, notice: FinishNotice) {
  const json = JSON.stringify(notice);
  try {
    if (replyTo.startsWith(CHANNEL_FORM)) {
      await redis.publish(finishNoticesChannel(prefix, replyTo.slice(CHANNEL_FORM.length)), json);
    } else {
      const key = finishNoticesKey(prefix, replyTo);
      await redis
        .multi()
        .xadd(key, 'MAXLEN', '~', LEGACY_STREAM_MAX_LEN, '*', 'n', json)
        .expire(key, LEGACY_STREAM_TTL_S)
        .exec();
    }
    return true;
  } catch {
    return false;
  }
}
