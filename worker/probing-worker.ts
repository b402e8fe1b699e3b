/**
 * A BullMQ Worker that asks before it fetches again. After every fetch that took a job, BullMQ's
 * main loop tries another fetch at once (to fill its concurrency), and BullMQ's fetch script adds
 * the queue's wake-up marker back each time it takes a job, so on a queue that the worker keeps
 * empty (the usual case: a hub serving as it should) each job costs two more full fetch scripts
 * and a blocking pop that returns at once, all finding nothing (docs/performance.md, "5 December,
 * afternoon": 1.84 empty fetches and 1.84 pops per predict entry). Here the fetch right after a
 * job is preceded by one small script (shared/redis/fetch-probe.lua) that reads the queue's
 * lengths and, when nothing is left, drops the stale marker in the same atomic step: the worker
 * then blocks until a job is added, as BullMQ intends. A fetch after a wake-up is BullMQ's own.
 *
 * For the same reason a run that finishes while the queue was last seen empty (the worker is
 * blocked on the marker, or about to be) does not fetch inside its finish script: that fetch
 * would find nothing and write a `drained` event; a job added meanwhile has re-added the marker,
 * and the blocking pop takes it. While the worker keeps finding jobs, each finish fetches the next
 * in the same script, as BullMQ does.
 *
 * What it keeps: a job is never left waiting while this worker could take it. The probe and the
 * marker's removal are one script, so a job added before it is seen (the worker fetches) and one
 * added after it re-adds the marker (the worker's blocking pop wakes). Stalled jobs moved back to
 * wait and promoted delayed jobs add the marker too. With delayed jobs the probe always says
 * fetch, so BullMQ's fetch promotes them as before.
 *
 * It relies on BullMQ 6's protected `moveToActive`, `nextJobFromJobData`, `handleCompleted` and
 * `handleFailed`, and on its key names (`keys.wait` …; shared/redis/bullmq-internals.ts lists what
 * else we read of BullMQ), checked by test/integration/probing-worker.test.ts. The connection is
 * kept for the probe: BullMQ 6's workers expose no client of their own.
 */
import { Worker, type Job, type JobJson, type Processor, type Span, type WorkerOptions } from 'bullmq';
import type { RedisClient } from '../shared/redis/connection.js';
import { luaCommands } from '../shared/redis/lua-commands.js';

interface ProbeCommands {
  modelhubFetchProbe(wait: string, prioritized: string, delayed: string, marker: string): Promise<number>;
}

const commands = luaCommands<ProbeCommands>({
  modelhubFetchProbe: { file: 'fetch-probe.lua', numberOfKeys: 4 },
});

export class ProbingWorker<DataType = unknown, ResultType = unknown> extends Worker<DataType, ResultType> {
  /** Whether the last fetch (BullMQ's own, or the one its finish script runs) took a job. */
  private tookJob = false;
  private readonly probeConnection: RedisClient;

  constructor(
    name: string,
    processor: Processor<DataType, ResultType>,
    options: WorkerOptions & { connection: RedisClient },
  ) {
    super(name, processor, options);
    this.probeConnection = options.connection;
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job<DataType, ResultType>> {
    if (this.tookJob && !(await this.mayHaveJob())) return this.nextJobFromJobData();
    return super.moveToActive(token, name);
  }

  protected override async nextJobFromJobData(
    jobData?: JobJson,
    jobId?: string,
    token?: string,
  ): Promise<Job<DataType, ResultType>> {
    const job = await super.nextJobFromJobData(jobData, jobId, token);
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- BullMQ types it as always a job; it is undefined when the queue was empty
    this.tookJob = job !== undefined;
    return job;
  }

  protected override handleCompleted(
    result: ResultType,
    job: Job<DataType, ResultType>,
    token: string,
    fetchNext: () => boolean = () => true,
    span?: Span,
  ): Promise<Job<DataType, ResultType>> {
    return super.handleCompleted(result, job, token, () => this.tookJob && fetchNext(), span);
  }

  protected override handleFailed(
    err: Error,
    job: Job<DataType, ResultType>,
    token: string,
    fetchNext: () => boolean = () => true,
    span?: Span,
  ): Promise<Job<DataType, ResultType>> {
    return super.handleFailed(err, job, token, () => this.tookJob && fetchNext(), span);
  }

  private async mayHaveJob(): Promise<boolean> {
    const k = this.keys;
    return (await commands(this.probeConnection).modelhubFetchProbe(k.wait, k.prioritized, k.delayed, k.marker)) === 1;
  }
}
