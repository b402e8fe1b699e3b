/**
 * Webhook events as jobs of their own BullMQ queue. The event's job id is "<job id>.<event>",
 * so an event is enqueued once however many processes report it, and its webhook-id (the
 * same on every retry) is derived from it.
 */
import type { Queue } from 'bullmq';
import type { WebhookOptions } from './options.js';
import type { JobView } from '../job-view.js';
import type { WebhookEvent } from '../jobs/payload.js';
import type { AnyWebhookEvent, BatchData } from '../batches/payload.js';
import type { BatchView } from '../batches/view.js';

export interface WebhookJobData {
  job_id: string;
  model: string;
  event: AnyWebhookEvent;
  url: string;
  /**
   * The exact body to sign and send. A `completed` event is enqueued before its job is marked
   * finished (so a worker dying in between cannot lose it); its body is then read from the
   * finished job at the first delivery attempt and kept, so every retry sends the same bytes.
   */
  body?: string;
}

export function webhookMessageId(jobId: string, event: AnyWebhookEvent): string {
  return `msg_${jobId}_${event}`;
}

export function webhookJobOptions(options: Pick<WebhookOptions, 'attempts' | 'backoffMs' | 'retentionS'>) {
  return {
    attempts: Math.max(1, options.attempts),
    backoff: { type: 'exponential', delay: options.backoffMs, jitter: 0.2 },
    removeOnComplete: { age: options.retentionS, count: 10_000 },
    removeOnFail: { age: options.retentionS, count: 10_000 },
  };
}

export interface WebhookSubject {
  id: string;
  model: string;
  webhook?: { url: string; events: WebhookEvent[] };
}

/** Enqueues one event (once: later calls for the same job and event are no-ops). */
export async function enqueueWebhookEvent(
  queue: Queue<WebhookJobData>,
  subject: WebhookSubject,
  event: WebhookEvent,
  body?: JobView,
): Promise<void> {
  const { webhook } = subject;
  if (!webhook || !webhook.events.includes(event)) return;
  const data: WebhookJobData = {
    job_id: subject.id,
    model: subject.model,
    event,
    url: webhook.url,
    ...(body ? { body: JSON.stringify(body) } : {}),
  };
  await queue.add('deliver', data, { jobId: `${subject.id}.${event}` });
}

/** A batch's one `batch.completed` event, its body (the finished batch) fixed now. Enqueued once. */
export async function enqueueBatchCompleted(
  queue: Queue<WebhookJobData>,
  batch: BatchData,
  view: BatchView,
): Promise<void> {
  if (!batch.webhook || !batch.webhook.events.includes('batch.completed')) return;
  const data: WebhookJobData = {
    job_id: batch.id,
    model: batch.model,
    event: 'batch.completed',
    url: batch.webhook.url,
    body: JSON.stringify({ type: 'batch.completed', ...view }),
  };
  await queue.add('deliver', data, { jobId: `${batch.id}.batch.completed` });
}
