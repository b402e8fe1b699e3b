import type { AnyOutput, Batch, BatchOptions, BatchResultLine, InputOf, Job, ModelDetail, ModelName, ModelSummary, OutputOf, PredictAnswer, SubmitOptions, Usage, WorkerInfo } from './types.js';
export interface ModelHubOptions {
    /** The hub's base URL. Default: the page's origin in a browser, else http://127.0.0.1:8080. */
    url?: string;
    /** API key, sent as `Authorization: Bearer <key>` (needed when the hub sets MODELHUB_API_KEYS). */
    apiKey?: string;
    /** A fetch implementation (default: the global one). */
    fetch?: typeof fetch;
    /** Extra headers on every request. */
    headers?: Record<string, string>;
}
export interface WaitOptions {
    /** Give up after this many seconds (WaitTimeoutError; the job continues). Default: no limit. */
    timeoutS?: number;
    /** Longest Prefer: wait hold per request, seconds (default 20; the hub caps it too). */
    holdS?: number;
    /** First pause between polls when the hub answers at once, ms (default 250; doubles, jittered). */
    pollMs?: number;
    /** Longest pause between polls, ms (default 5000). */
    maxPollMs?: number;
    /** Called with the job after every read (status changes, progress lines). */
    onUpdate?: (job: Job) => void;
    signal?: AbortSignal;
}
export interface PredictOptions {
    /** Keep waiting after the hub's own predict wait limit (1502) runs out (default true). */
    waitBeyondLimit?: boolean;
    /** Give up after this many seconds in all (default: no limit). */
    timeoutS?: number;
    signal?: AbortSignal;
}
export type Finished<J extends {
    status: string;
}> = J & {
    status: 'succeeded' | 'failed' | 'canceled';
};
export declare const isFinished: (job: {
    status: string;
}) => boolean;
/** The spec output of a finished job; throws its spec error when it failed or was canceled. */
export declare function outputOf<O>(job: Job<O>): O;
export declare class ModelHub {
    readonly url: string;
    private readonly apiKey?;
    private readonly fetchImpl;
    private readonly headers;
    constructor(options?: ModelHubOptions);
    /** GET /v1/models: every model with its task, status, live workers and queue depth. */
    models(options?: {
        signal?: AbortSignal;
    }): Promise<ModelSummary[]>;
    /** GET /v1/models/{model}: its input schema, output fields, labels and batching. */
    model(name: ModelName, options?: {
        signal?: AbortSignal;
    }): Promise<ModelDetail>;
    /** GET /v1/models/{model}/example: a ready sample input. */
    example<M extends ModelName>(name: M, options?: {
        signal?: AbortSignal;
    }): Promise<InputOf<M>>;
    /**
     * POST /v1/models/{model}/jobs: enqueues a job. Answers the queued job (`status: "queued"`), or
     * the finished job when `waitS` is given and it finished in time, or the first job for a
     * repeated `idempotencyKey`.
     */
    submit<M extends ModelName>(model: M, input: InputOf<M>, options?: SubmitOptions): Promise<Job<OutputOf<M>>>;
    /** GET /v1/jobs/{id}: the job as it stands (`waitS`: hold until it finishes, up to that long). */
    get<O = AnyOutput>(id: string, options?: {
        waitS?: number;
        signal?: AbortSignal;
    }): Promise<Job<O>>;
    /**
     * Waits until the job finishes and returns it, whatever its outcome (see `outputOf`). Each read
     * asks the hub to hold it (Prefer: wait); when the hub answers at once anyway, reads are spaced
     * with exponential backoff and jitter. Brief hub or Redis outages are ridden out.
     */
    wait<O = AnyOutput>(job: string | Job<O>, options?: WaitOptions): Promise<Finished<Job<O>>>;
    /**
     * The spec output for one input: POST /v1/models/{model}/predict. If the hub's own wait limit
     * passes first (1502), keeps waiting on the job. Throws ModelHubError with the spec error when
     * the input is refused or the job fails.
     */
    predict<M extends ModelName>(model: M, input: InputOf<M>, options?: PredictOptions): Promise<PredictAnswer<M>>;
    /** POST /v1/jobs/{id}/cancel: a queued job becomes canceled and never runs (409 once running). */
    cancel(id: string, options?: {
        signal?: AbortSignal;
    }): Promise<Job>;
    /** DELETE /v1/jobs/{id}: removes a finished job's input and output (409 while queued or running). */
    delete(id: string, options?: {
        signal?: AbortSignal;
    }): Promise<{
        id: string;
        deleted: true;
    }>;
    /**
     * GET /v1/workers: live workers, their devices, models and load with an admin key (or an open
     * hub); with a tenant key only an empty list (tenants see counts: see `workerCounts`).
     */
    workers(options?: {
        signal?: AbortSignal;
    }): Promise<WorkerInfo[]>;
    /**
     * GET /v1/usage: this key's tenant's waiting jobs and stored bytes per model, against its limits
     * (what a 429 with error_code 1402 was decided on). An admin key may pass another `tenant`.
     */
    usage(options?: {
        tenant?: string;
        signal?: AbortSignal;
    }): Promise<Usage>;
    /** GET /v1/workers as a tenant sees it: how many live workers, by device and by model. */
    workerCounts(options?: {
        signal?: AbortSignal;
    }): Promise<{
        count: number;
        by_device?: Record<string, number>;
        by_model?: Record<string, number>;
    }>;
    /** GET /healthz. */
    health(): Promise<{
        status: string;
    }>;
    /** GET /readyz: resolves when the hub's Redis answers, else throws (HTTP 503). */
    ready(): Promise<{
        status: string;
    }>;
    /**
     * POST /v1/models/{model}/batches: many inputs as one batch (sent as JSON; for uploads larger
     * than the hub's MAX_BODY_BYTES, POST a JSONL file with Content-Type application/x-ndjson).
     */
    submitBatch<M extends ModelName>(model: M, inputs: InputOf<M>[], options?: BatchOptions): Promise<Batch>;
    /** GET /v1/batches/{id}: status, counts, timestamps. */
    getBatch(id: string, options?: {
        signal?: AbortSignal;
    }): Promise<Batch>;
    /** GET /v1/batches/{id}/results: the lines finished so far, in completion order or by `index`. */
    batchResults<O = AnyOutput>(id: string, options?: {
        order?: 'completion' | 'input';
        signal?: AbortSignal;
    }): Promise<BatchResultLine<O>[]>;
    /** POST /v1/batches/{id}/cancel: the items not yet started are canceled; running ones finish. */
    cancelBatch(id: string, options?: {
        signal?: AbortSignal;
    }): Promise<Batch>;
    /**
     * GET /metrics: Prometheus text. The hub serves it on its metrics listener (API_METRICS_PORT),
     * not on the API's port: point a client at that address to use this.
     */
    metrics(): Promise<string>;
    /** GET /openapi.json. */
    openapi(): Promise<Record<string, unknown>>;
    private send;
    private request;
    /** A non-2xx answer: the hub's spec error as ModelHubError (with Retry-After), anything else as a connection error. */
    private fail;
}
