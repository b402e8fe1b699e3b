/**
 * The API's side of coalesced predict entries (shared/predict/entry.ts): the calls one window
 * gathered (predict-coalescer.ts) are counted one by one, exactly as separate jobs would be (each
 * its own accounting record and quota check, so one tenant's refusal is its call's alone) but in
 * one Redis script for the whole entry, indexed under one key for the entry (api/jobs/job-index.ts),
 * queued as one entry on the model's predict lane, and answered from the entry's one
 * finishing event, each call with its own item's output or error. A call whose event never came
 * (a Redis restart, a lost notice) reads its item back like any job.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Config } from '../shared/config.js';
import { SpecError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { PREDICT_LANE_EVENTS_MAX_LEN, defaultJobOptions, sideKeyTtlS } from '../shared/jobs/retention.js';
import type { JobView } from '../shared/job-view.js';
import {
  ENTRY_INPUTS_APART_VERSION,
  ENTRY_PAYLOAD_VERSION,
  anonymousCallsRecordId,
  predictItemId,
  type EntryData,
  type EntryInputs,
  type EntryItem,
  type EntryResult,
} from '../shared/predict/entry.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { entryInputsKey, predictQueueName } from '../shared/redis/keys.js';
import { entryGoneOrFinished } from '../shared/redis/bullmq-internals.js';
import { bullTelemetry } from '../shared/tracing.js';
import type { Finish } from './job-finish-events.js';
import type { JobService } from './job-service.js';
import { cleanUpOrRetry } from '../shared/redis/cleanup-retry.js';
import { storeCall, type StoreCall } from './store-call.js';

export interface PredictCall {
  tenant: string | null;
  input: Record<string, unknown>;
  /** The call's trace (tracing on), shown on its view. */
  traceId?: string;
  /** Its W3C traceparent: the item's run in the worker joins the call's own trace. */
  traceparent?: string;
}

/** A call's finished (or, past the wait, still queued or running) view, and how many calls shared its entry. */
export interface PredictAnswer {
  view: JobView;
  entryItems: number;
}

const urlsOf = (id: string) => ({ get: `/v1/jobs/${id}`, cancel: `/v1/jobs/${id}/cancel` });

export class PredictEntries {
  readonly queues = new Map<string, Queue<EntryData, EntryResult>>();
  private readonly store: StoreCall;

  constructor(
    private readonly jobs: JobService,
    private readonly redis: RedisClient,
    private readonly config: Config,
    private readonly log: Logger,
    /** The entry payload version to write for a model (api/entry-fleet.ts). Default: the newest. */
    private readonly payloadVersion: (model: string) => number = () => ENTRY_PAYLOAD_VERSION,
  ) {
    this.store = storeCall(log);
    for (const name of jobs.queues.keys()) {
      const queue = new Queue<EntryData, EntryResult>(predictQueueName(name), {
        connection: redis,
        prefix: config.MODELHUB_PREFIX,
        defaultJobOptions: defaultJobOptions(config),
        telemetry: bullTelemetry(),
        streams: { events: { maxLen: PREDICT_LANE_EVENTS_MAX_LEN } },
      });
      queue.on('error', (err) => log.warn({ err: err.message, model: name }, 'predict lane error'));
      this.queues.set(name, queue);
    }
  }

  /** Sends `calls` as one entry: one answer per call, in order; a call's refusal rejects its own promise only. */
  submit(model: string, calls: PredictCall[]): Promise<PredictAnswer>[] {
    const entryId = randomUUID();
    const now = Date.now();
    const items: EntryItem[] = calls.map((c, k) => ({
      id: predictItemId(entryId, k),
      tenant: c.tenant,
      input: c.input,
      ...(c.traceId ? { trace_id: c.traceId } : {}),
      ...(c.traceparent ? { traceparent: c.traceparent } : {}),
    }));
    const outcomes = this.store(() => this.run(model, entryId, items, now));
    return items.map(async (item) => {
      const settled = await outcomes;
      const own = settled.get(item.id)!;
      if (own instanceof Error) throw own;
      return own;
    });
  }

  private async run(
    model: string,
    entryId: string,
    items: EntryItem[],
    now: number,
  ): Promise<Map<string, PredictAnswer | Error>> {
    const prefix = this.config.MODELHUB_PREFIX;
    const out = new Map<string, PredictAnswer | Error>();
    await this.jobs.checkWaiting(model);
    const version = this.payloadVersion(model);
    // v2: the inputs go in a key of their own, written with the accounting (no extra round trip);
    // a refused call's input stays there, unread, until the key is deleted with the entry.
    const inputsKey = entryInputsKey(prefix, model, entryId);
    const inputsApart = version >= ENTRY_INPUTS_APART_VERSION;
    const dropInputs = () => (inputsApart ? this.redis.del(inputsKey).catch(() => 0) : Promise.resolve(0));
    // Each call counted as a job of its own would be (its quota check, its record), all in one
    // script; the entry's calls indexed under one key, written meanwhile.
    const writes = Promise.all([
      this.jobs.quotas.admitEntry(model, items),
      this.jobs.index.writeEntry(entryId, model, now, items),
      inputsApart
        ? this.redis.set(inputsKey, entryInputsJson(items), 'EX', sideKeyTtlS(this.config))
        : Promise.resolve(null),
    ]);
    // When no call can be refused, the add does not wait for those writes' replies: it follows
    // them on the same connection, so Redis runs it after them, in one round trip instead of two.
    const pipelined = !this.jobs.quotas.mayRefuse(items);
    let accepted = items;
    if (!pipelined) {
      const [refusals] = await writes;
      accepted = await this.dropRefused(model, entryId, now, items, refusals, out);
      if (accepted.length === 0) {
        await dropInputs();
        return out;
      }
    }

    const waitMs = this.config.PREDICT_WAIT_S * 1000;
    const queue = this.queues.get(model)!;
    // Armed before the entry exists: its notice cannot slip past between add and listen. Without
    // a notice the entry is read back once it has been added.
    let added = false;
    const finish = this.jobs.waits.watch(
      entryId,
      waitMs,
      async () => added && entryGoneOrFinished(this.redis, prefix, model, entryId),
    );
    const data: EntryData = {
      v: version,
      kind: 'entry',
      model,
      items: accepted.map((it) => ({
        ...it,
        ...(inputsApart ? { input: {} } : {}),
        ...(this.jobs.quotas.countsWaiting(it.tenant) ? { counted_waiting: true as const } : {}),
      })),
      tenant: null,
      input: {},
      reply_to: this.jobs.waits.replyTo,
      marks_waiting: true,
    };
    try {
      // No priority: every entry on the lane has predict's (5), so a plain FIFO list does.
      const add = queue.add('entry', data, { jobId: entryId, timestamp: now });
      // A write that failed while the add went through leaves the entry to run: finish-entry.lua
      // writes a record the submit did not, and the reconciler releases one left without its entry.
      if (pipelined)
        await Promise.all([
          add,
          writes.catch((cause: unknown) =>
            this.log.warn({ err: (cause as Error).message, entry: entryId, model }, 'a predict entry write failed'),
          ),
        ]);
      else await add;
      added = true;
    } catch (err) {
      finish.cancel();
      // The add may have been applied with its reply lost: an entry found queued keeps its
      // records and inputs (it runs). One surely not stored leaves nothing behind: its calls'
      // records, its index and its inputs go, and again in the background while Redis cannot be
      // reached (the cut that failed the add fails this too); past that the reconciler releases
      // the records, and the inputs expire with their key.
      await cleanUpOrRetry(
        async () => {
          if (await queue.getJob(entryId)) return;
          await Promise.all([
            ...accepted.map((it) => this.jobs.accounting.release(model, it.id)),
            this.jobs.accounting.release(model, anonymousCallsRecordId(entryId)),
            this.jobs.index.writeEntry(entryId, model, now, []),
            inputsApart ? this.redis.del(inputsKey) : undefined,
          ]);
        },
        (cause) =>
          this.log.warn(
            { err: (cause as Error).message, entry: entryId, model },
            'could not clean up after a failed entry; the reconciler will release its calls',
          ),
      );
      throw err;
    }
    const outcome = await finish.done;
    const n = accepted.length;
    for (const it of accepted) out.set(it.id, await this.answer(model, it, now, n, outcome));
    return out;
  }

  /**
   * The calls admitted; a refused one gets its refusal in `out` and leaves nothing behind: its
   * record goes, and the index keeps only the others.
   */
  private async dropRefused(
    model: string,
    entryId: string,
    now: number,
    items: EntryItem[],
    refusals: (SpecError | null)[],
    out: Map<string, PredictAnswer | Error>,
  ): Promise<EntryItem[]> {
    const accepted: EntryItem[] = [];
    for (const [k, it] of items.entries()) {
      const refusal = refusals[k];
      if (refusal) out.set(it.id, refusal);
      else accepted.push(it);
    }
    if (accepted.length < items.length)
      await Promise.all([
        ...items
          .filter((it) => out.has(it.id))
          .map((it) => this.jobs.accounting.release(model, it.id).catch(() => undefined)),
        this.jobs.index.writeEntry(entryId, model, now, accepted).catch(() => undefined),
      ]);
    return accepted;
  }

  /** One call's answer from its entry's finishing event, or read back when there was none. */
  private async answer(
    model: string,
    item: EntryItem,
    createdAt: number,
    entryItems: number,
    outcome: Finish | null,
  ): Promise<PredictAnswer> {
    const submitted: JobView = {
      id: item.id,
      model,
      status: 'queued',
      created_at: new Date(createdAt).toISOString(),
      urls: urlsOf(item.id),
      ...(item.trace_id ? { trace_id: item.trace_id } : {}),
    };
    if (outcome?.event === 'completed') {
      const result = outcome.returnvalue as unknown as EntryResult;
      const own = result.items.find((r) => r.id === item.id);
      if (own && 'output' in own)
        return {
          view: {
            ...submitted,
            status: 'succeeded',
            output: { ...own.output, request_id: item.id, success: true, error_code: 0 },
          },
          entryItems: result.metrics.entry_items,
        };
      if (own)
        return {
          view: { ...submitted, status: 'failed', output: { ...SpecError.fromReason(own.error).toBody(item.id) } },
          entryItems: result.metrics.entry_items,
        };
    }
    if (outcome?.event === 'failed') {
      const error = SpecError.fromReason(outcome.failedReason);
      return { view: { ...submitted, status: 'failed', output: { ...error.toBody(item.id) } }, entryItems };
    }
    // No event (a timeout, an event stream lost to a Redis restart): the item is read back.
    const view = await this.jobs.get(item.id, item.tenant).catch((err: unknown) => {
      this.log.debug({ err: (err as Error).message, id: item.id }, 'predict call read back failed');
      return submitted;
    });
    return { view, entryItems };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/** A v2 entry's inputs as stored (EntryInputs): item id → input. */
function entryInputsJson(items: readonly EntryItem[]): string {
  const inputs: EntryInputs = {};
  for (const it of items) inputs[it.id] = it.input;
  return JSON.stringify(inputs);
}
