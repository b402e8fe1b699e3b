/**
 * Submitting a job: its Idempotency-Key claimed, the model's backpressure and its tenant's quotas
 * passed, its accounting record and index entry written, then the job added to the model's queue;
 * with `waitS`, its finished view awaited. A submission that fails leaves nothing behind that
 * would count against its tenant (an ambiguous add is left to the reconciler).
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../shared/config.js';
import { SpecError } from '../../shared/errors.js';
import type { JobAccounting } from '../../shared/jobs/accounting.js';
import { JOB_PAYLOAD_VERSION, type JobData, type WebhookEvent } from '../../shared/jobs/payload.js';
import { jobView, type JobView } from '../../shared/job-view.js';
import type { RedisClient } from '../../shared/redis/connection.js';
import { modelQueueName } from '../../shared/redis/keys.js';
import { ATTR, SpanKind, activeTraceId, inSpan } from '../../shared/tracing.js';
import { IdempotencyKey } from '../idempotency.js';
import type { StoreCall } from '../store-call.js';
import type { JobIndex, JobIndexEntry } from './job-index.js';
import type { JobQueues } from './job-queues.js';
import type { JobReads } from './job-reads.js';
import type { JobWaits } from './job-waits.js';
import type { SubmitQuotas } from './submit-quotas.js';

export interface SubmitOptions {
  tenant: string | null;
  priority?: number;
  timeoutS?: number;
  webhook?: { url: string; events: WebhookEvent[] };
  /** Client's Idempotency-Key and a hash of the request it came with. */
  idempotency?: { key: string; requestHash: string };
  /**
   * Wait up to this many seconds for the job to finish and answer its finished view (predict,
   * `Prefer: wait`). The wait is armed before the job is added, so its completion event is
   * never missed and the result comes from the event: nothing is read back to find out.
   */
  waitS?: number;
  /**
   * Predict: the caller answers with the spec output alone, so a job that completes or fails
   * while waited for is not read back (no timestamps are needed); its view comes from the event.
   */
  outputOnly?: boolean;
}

export interface SubmitResult {
  view: JobView;
  /** True when an Idempotency-Key replay returned an existing job. */
  replayed: boolean;
}

/** What a submission needs besides the other job modules. */
export interface JobSubmitterParts {
  queues: JobQueues;
  index: JobIndex;
  quotas: SubmitQuotas;
  accounting: JobAccounting;
  reads: JobReads;
  waits: JobWaits;
  store: StoreCall;
  /** The submit connection (Idempotency-Key records). */
  redis: RedisClient;
  /** MODELHUB_PREFIX, and JOB_RETENTION_S: how long an Idempotency-Key holds its job. */
  settings: Pick<Config, 'MODELHUB_PREFIX' | 'JOB_RETENTION_S'>;
}

export class JobSubmitter {
  constructor(private readonly parts: JobSubmitterParts) {}

  async submit(model: string, input: Record<string, unknown>, options: SubmitOptions): Promise<SubmitResult> {
    const { queues, reads, waits } = this.parts;
    queues.runnable(model);
    const id = randomUUID();
    const waitS = options.waitS ?? 0;
    // Armed before the job exists: its notice cannot slip past between add and listen. Without a
    // notice (lost, or a worker that sends none) the job is read back once it has been added.
    let added = false;
    const finish =
      waitS > 0 ? waits.notices.watch(id, waitS * 1000, async () => added && reads.submittedDone(model, id)) : null;
    let result: SubmitResult;
    try {
      result = await inSpan(
        'enqueue',
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            [ATTR.messagingSystem]: 'bullmq',
            [ATTR.messagingDestination]: modelQueueName(model),
            [ATTR.messagingOperationType]: 'send',
            [ATTR.messagingOperationName]: 'enqueue',
            [ATTR.messagingMessageId]: id,
            [ATTR.model]: model,
          },
        },
        () => this.add(model, id, input, options, finish ? waits.notices.replyTo : undefined),
      );
      added = true;
    } catch (err) {
      finish?.cancel();
      throw err;
    }
    if (waitS <= 0) return result;
    if (result.replayed || !finish) {
      finish?.cancel();
      return { ...result, view: await waits.waitFor(result.view.id, options.tenant, waitS) };
    }
    const outcome = await inSpan(
      'wait',
      { attributes: { [ATTR.jobId]: id, 'modelhub.wait_s': waitS } },
      () => finish.done,
    );
    return { ...result, view: await reads.finished(result.view, options, outcome) };
  }

  private async add(
    model: string,
    id: string,
    input: Record<string, unknown>,
    options: SubmitOptions,
    replyTo?: string,
  ): Promise<SubmitResult> {
    const { queues, index, quotas, accounting, reads, store, redis, settings } = this.parts;
    const queue = queues.queue(model);
    const now = Date.now();
    // Shown on the job's view, so a user can hand it to an operator (tracing on only).
    const traceId = activeTraceId();
    const data: JobData = {
      v: JOB_PAYLOAD_VERSION,
      model,
      input,
      tenant: options.tenant,
      ...(options.timeoutS ? { deadline_at: now + options.timeoutS * 1000 } : {}),
      ...(options.webhook ? { webhook: options.webhook } : {}),
      ...(traceId ? { trace_id: traceId } : {}),
      ...(replyTo ? { reply_to: replyTo } : {}),
    };
    return store(async () => {
      const idem = options.idempotency
        ? new IdempotencyKey(
            redis,
            settings.MODELHUB_PREFIX,
            options.tenant,
            options.idempotency.key,
            options.idempotency.requestHash,
            settings.JOB_RETENTION_S,
          )
        : null;
      if (idem && !(await idem.claim(id)))
        return { view: await idem.replay((jobId) => reads.get(jobId, options.tenant)), replayed: true };
      let indexed = false;
      let adding = false;
      try {
        await quotas.checkWaiting(model);
        const entry: JobIndexEntry = {
          model,
          tenant: options.tenant,
          created_at: now,
          deadline_at: data.deadline_at ?? null,
          ...(options.webhook ? { webhook: true } : {}),
          ...(traceId ? { trace_id: traceId } : {}),
        };
        // The job's accounting record (its quota check with it) and its index entry, sent together.
        // A tenant's inputs count in its stored bytes until the job finishes (its quota).
        const [refusal] = await Promise.all([quotas.admit(model, id, options.tenant, input), index.write(id, entry)]);
        indexed = true;
        if (refusal) throw refusal;
        adding = true;
        // BullMQ priority: 1 is highest, as in the API.
        const job = await queue.add('infer', data, { jobId: id, timestamp: now, priority: options.priority ?? 5 });
        quotas.added(model);
        await idem?.markStored(id);
        return { view: jobView(job, 'waiting'), replayed: false };
      } catch (err) {
        // Only an add that failed on Redis is ambiguous (a timed-out add may have been stored):
        // then the record stays, and the reconciler gives it back if the job never appears.
        const stored =
          adding && !(err instanceof SpecError)
            ? await queue.getJob(id).then(
                (j) => Boolean(j),
                () => null,
              )
            : false;
        if (stored === false) {
          // The index entry of a job that surely was not stored would point at nothing for a day.
          if (indexed) await index.remove(id).catch(() => undefined);
          await accounting.release(model, id).catch(() => undefined);
        }
        await idem?.settleAfterFailure(stored);
        throw err;
      }
    });
  }
}
