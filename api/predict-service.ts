/**
 * Synchronous predict: a call goes out as a job of its own, or, while other calls for its model
 * are in flight, coalesced with them into one queue entry (predict-coalescer.ts,
 * predict-entries.ts). Either way the caller gets its own answer and `entry_items`, the number of
 * calls that shared its queue entry (also the histogram modelhub_predict_entry_items).
 */
import type { Histogram } from 'prom-client';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { EntryFleet } from './entry-fleet.js';
import type { JobService } from './job-service.js';
import { PredictCoalescer } from './predict-coalescer.js';
import { PredictEntries, type PredictAnswer, type PredictCall } from './predict-entries.js';

export class PredictService {
  readonly entries: PredictEntries;
  readonly fleet: EntryFleet;
  private readonly coalescer: PredictCoalescer<PredictCall, PredictAnswer>;

  constructor(
    private readonly jobs: JobService,
    redis: RedisClient,
    reader: RedisClient,
    private readonly config: Config,
    log: Logger,
    entryItems: Histogram<'model'>,
  ) {
    this.entries = new PredictEntries(jobs, redis, config, log, (model) => this.fleet.payloadVersion(model));
    this.fleet = new EntryFleet(reader, config.MODELHUB_PREFIX);
    this.coalescer = new PredictCoalescer<PredictCall, PredictAnswer>({
      windowMs: config.MODELHUB_PREDICT_COALESCE_MS,
      capacity: (model) => jobs.model(model).manifest.batching.max_batch_size,
      // A full batch per worker reading the model's entries: what keeps them all busy.
      holdAt: (model) => jobs.model(model).manifest.batching.max_batch_size * this.fleet.readers(model),
      holdMs: config.MODELHUB_PREDICT_HOLD_MS,
      enabled: (model) => this.fleet.serves(model),
      single: async (model, call) => {
        entryItems.observe({ model }, 1);
        return { view: (await this.single(model, call)).view, entryItems: 1 };
      },
      entry: (model, calls) => {
        entryItems.observe({ model }, calls.length);
        return this.entries.submit(model, calls);
      },
    });
    if (config.MODELHUB_PREDICT_COALESCE_MS > 0) void this.fleet.refresh();
  }

  predict(model: string, call: PredictCall): Promise<PredictAnswer> {
    return this.coalescer.predict(model, call.tenant, call);
  }

  private single(model: string, call: PredictCall) {
    return this.jobs.submit(model, call.input, {
      tenant: call.tenant,
      waitS: this.config.PREDICT_WAIT_S,
      outputOnly: true,
    });
  }

  close(): Promise<void> {
    return this.entries.close();
  }
}
