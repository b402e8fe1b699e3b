/**
 * The webhook delivery worker: consumes the webhooks queue, signs each event, POSTs it, and
 * lets BullMQ retry with exponential backoff and jitter. 2xx ends an event; 410 Gone and
 * refused targets stop it; anything else (other statuses, timeouts, refused connections)
 * retries. Redirects are never followed. Runs in the API process or on its own
 * (`npm run start:webhooks`, webhooks/main.ts); either way, never on an inference worker's event loop.
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../shared/logger.js';
import { canceledView, readJobView, type JobView } from '../shared/job-view.js';
import type { JobData, JobResult } from '../shared/jobs/payload.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { WEBHOOK_QUEUE, jobIndexKey, modelQueueName, webhookStatusKey } from '../shared/redis/keys.js';
import { webhookMessageId, type WebhookJobData } from '../shared/webhooks/events.js';
import type { WebhookOptions } from '../shared/webhooks/options.js';
import { signWebhook } from '../shared/webhooks/signature.js';
import { WebhookTargetError, WebhookTargetPolicy } from '../shared/webhooks/target-policy.js';
import { postOnce } from './http-post.js';
import { ATTR, SpanKind, bullTelemetry, failSpan, inSpan } from '../shared/tracing.js';

type DeliveryOptions = Pick<WebhookOptions, 'prefix' | 'secret' | 'timeoutMs' | 'allowPrivate' | 'recordTtlS'>;

/** The field of a job's webhook record that marks `event` delivered. */
const deliveredField = (event: string) => `delivered:${event}`;

export class WebhookDelivery {
  readonly worker: Worker<WebhookJobData>;
  private readonly policy: WebhookTargetPolicy;
  private readonly deliveries: Counter;
  private readonly seconds: Histogram;
  private readonly modelQueues = new Map<string, Queue<JobData, JobResult>>();

  constructor(
    private readonly options: DeliveryOptions,
    private readonly redis: RedisClient,
    /** The worker's own connection (retries until Redis answers): the delivery records go through it. */
    private readonly connection: RedisClient,
    private readonly log: Logger,
    registry: Registry,
    concurrency = 32,
  ) {
    if (!options.secret) throw new Error('MODELHUB_WEBHOOK_SECRET is not set: webhooks cannot be signed');
    this.policy = new WebhookTargetPolicy(options.allowPrivate);
    this.deliveries = new Counter({
      name: 'modelhub_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, gone, refused, unsigned: no usable secret; duplicate: already delivered, not sent again)',
      labelNames: ['event', 'outcome'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'modelhub_webhook_delivery_seconds',
      help: 'Duration of one webhook POST',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.worker = new Worker<WebhookJobData>(WEBHOOK_QUEUE, (job, token) => this.deliver(job, token), {
      connection,
      prefix: options.prefix,
      concurrency,
      // Tracing on: each delivery continues the trace of the job whose event it is.
      telemetry: bullTelemetry(),
    });
    this.worker.on('error', (err) => log.warn({ err: err.message }, 'webhook worker error'));
  }

  async close(): Promise<void> {
    await this.worker.close();
    await Promise.all([...this.modelQueues.values()].map((q) => q.close()));
  }

  /** The body of a `completed` event: the finished job, read once and kept for every retry. */
  private async completedBody(job: Job<WebhookJobData>, token: string | undefined): Promise<string> {
    const { model, job_id } = job.data;
    let queue = this.modelQueues.get(model);
    if (!queue) {
      queue = new Queue<JobData, JobResult>(modelQueueName(model), {
        connection: this.redis,
        prefix: this.options.prefix,
      });
      this.modelQueues.set(model, queue);
    }
    const view = (await readJobView(queue, job_id)) ?? (await this.canceledViewOf(job_id));
    if (!view) throw new UnrecoverableError(`job ${job_id} no longer exists`);
    if (view.status === 'queued' || view.status === 'running') {
      // Enqueued just before the job was marked finished (or it is being recovered): look again soon.
      await job.moveToDelayed(Date.now() + 500, token);
      throw new DelayedError();
    }
    const body = JSON.stringify(view);
    await job.updateData({ ...job.data, body });
    return body;
  }

  /** A job a cancel removed reads canceled from its index entry (its cancel's own event may have lost the race to be enqueued). */
  private async canceledViewOf(jobId: string): Promise<JobView | null> {
    const raw = await this.redis.get(jobIndexKey(this.options.prefix, jobId));
    const index = raw ? (JSON.parse(raw) as { model: string; created_at: number; canceled_at?: number }) : null;
    return index?.canceled_at ? canceledView(jobId, index.model, index.created_at, index.canceled_at) : null;
  }

  private async deliver(job: Job<WebhookJobData>, token?: string): Promise<number | 'duplicate'> {
    const { job_id, event, url } = job.data;
    const statusKey = webhookStatusKey(this.options.prefix, job_id);
    // The durable marker of a delivered event (it lives as long as the job): an event enqueued
    // again after its first delivery left the queue's own retention is never sent twice.
    if (await this.redis.hexists(statusKey, deliveredField(event))) {
      this.deliveries.inc({ event, outcome: 'duplicate' });
      return 'duplicate';
    }
    const body = job.data.body ?? (await this.completedBody(job, token));
    // This event's attempt number: BullMQ counts its finished attempts (a DelayedError wait is not one).
    const attempt = job.attemptsMade + 1;
    let headers: ReturnType<typeof signWebhook>;
    try {
      if (this.options.secret === undefined) throw new Error('MODELHUB_WEBHOOK_SECRET is not set in this process');
      headers = signWebhook(this.options.secret, webhookMessageId(job_id, event), body);
    } catch (err) {
      // Never sent unsigned, never dropped silently: the job's delivery record says why.
      this.log.error({ err: (err as Error).message, jobId: job_id }, 'webhook delivery cannot be signed');
      await this.record(statusKey, attempt, 'unsigned');
      this.deliveries.inc({ event, outcome: 'unsigned' });
      throw new UnrecoverableError(`the delivery cannot be signed: ${(err as Error).message}`);
    }
    const started = performance.now();
    let status: number;
    try {
      const target = new URL(url);
      status = await inSpan(
        'webhook delivery',
        {
          kind: SpanKind.CLIENT,
          attributes: {
            [ATTR.httpMethod]: 'POST',
            [ATTR.urlFull]: redactedUrl(target),
            [ATTR.serverAddress]: target.hostname,
            [ATTR.httpResendCount]: attempt - 1,
            [ATTR.jobId]: job_id,
            'modelhub.webhook.event': event,
          },
        },
        async (span) => {
          const answer = await postOnce(target, body, { ...headers }, this.options.timeoutMs, this.policy);
          span?.setAttribute(ATTR.httpStatus, answer);
          if (answer >= 400) failSpan(span, new Error(`receiver answered ${answer}`));
          return answer;
        },
      );
    } catch (err) {
      const refused = err instanceof WebhookTargetError;
      // One fixed word, never the connection error: its text would tell a tenant which internal
      // addresses and ports answer (a port-scan oracle). A target refused by the address policy
      // reads the same, or it would tell which host names resolve to private addresses. The log
      // and the metric's outcome label (operators') keep the difference.
      this.log.debug({ err: (err as Error).message, jobId: job_id }, 'webhook delivery attempt failed');
      await this.record(statusKey, attempt, 'unreachable');
      this.deliveries.inc({ event, outcome: refused ? 'refused' : 'retry' });
      if (refused) throw new UnrecoverableError((err as Error).message);
      throw err;
    } finally {
      this.seconds.observe((performance.now() - started) / 1000);
    }
    await this.record(statusKey, attempt, String(status), status >= 200 && status < 300 ? event : undefined);
    if (status >= 200 && status < 300) {
      this.deliveries.inc({ event, outcome: 'delivered' });
      return status;
    }
    if (status === 410) {
      this.deliveries.inc({ event, outcome: 'gone' });
      throw new UnrecoverableError('receiver answered 410 Gone: no more retries');
    }
    this.deliveries.inc({ event, outcome: 'retry' });
    throw new Error(`receiver answered ${status}`);
  }

  /**
   * The job's delivery record: the attempts of the event last attempted (not a sum over its
   * events: a job whose start and completed events each arrived at the first try reads 1) and
   * that attempt's status.
   */
  private async record(key: string, attempt: number, lastStatus: string, deliveredEvent?: string): Promise<void> {
    // On the connection that waits out a Redis outage: a 2xx already received must end the event,
    // and a record that failed here would fail the attempt and send the same webhook-id again.
    const multi = this.connection.multi().hset(key, 'attempts', attempt, 'last_status', lastStatus);
    if (deliveredEvent) {
      multi.hset(key, `delivered_at`, new Date().toISOString(), 'delivered_event', deliveredEvent);
      multi.hset(key, deliveredField(deliveredEvent), 1);
    }
    await multi.expire(key, this.options.recordTtlS).exec();
  }
}

/** A target as a span shows it: no credentials, no query (it may hold a token). */
function redactedUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?REDACTED' : ''}`;
}
