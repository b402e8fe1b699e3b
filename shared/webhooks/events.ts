/**
 * Webhook events as jobs of their own BullMQ queue. The event's job id is "<job id>.<event>",
 * so an event is enqueued once however many processes report it, and its webhook-id (the
 * same on every retry) is derived from it.
 */
import type { Queue } from 'bullmq';
import type { Config } from '../config.js';
import type { JobView } from '../job-view.js';
import type { WebhookEvent } from '../queue.js';

export interface WebhookJobData {
  job_id: string;
  event: WebhookEvent;
  url: string;
  /** The exact body to sign and send, fixed at enqueue time. */
  body: string;
}

export function webhookMessageId(jobId: string, event: WebhookEvent): string {
  return `msg_${jobId}_${event}`;
}

export function webhookJobOptions(config: Pick<Config, 'WEBHOOK_ATTEMPTS' | 'WEBHOOK_BACKOFF_MS' | 'JOB_RETENTION_S'>) {
  return {
    attempts: Math.max(1, config.WEBHOOK_ATTEMPTS),
    backoff: { type: 'exponential', delay: config.WEBHOOK_BACKOFF_MS, jitter: 0.2 },
    removeOnComplete: { age: config.JOB_RETENTION_S, count: 10_000 },
    removeOnFail: { age: config.JOB_RETENTION_S, count: 10_000 },
  };
}

export async function enqueueWebhookEvent(
  queue: Queue<WebhookJobData>,
  view: JobView,
  webhook: { url: string; events: WebhookEvent[] } | undefined,
  event: WebhookEvent,
): Promise<void> {
  if (!webhook || !webhook.events.includes(event)) return;
  await queue.add('deliver', { job_id: view.id, event, url: webhook.url, body: JSON.stringify(view) }, { jobId: `${view.id}.${event}` });
}
