/**
 * The ModelHub client. One method per API operation, named as the operation's operationId in
 * /openapi.json, plus `wait()` (a job until it finishes) and `predict()` (the spec output).
 */
import { ErrorCodes, ModelHubConnectionError, ModelHubError, WaitTimeoutError, statusOfErrorCode } from './errors.js';
import type {
  AnyOutput,
  Batch,
  BatchOptions,
  BatchResultLine,
  InputOf,
  Job,
  ModelDetail,
  ModelName,
  ModelSummary,
  OutputOf,
  PredictAnswer,
  SpecErrorBody,
  SubmitBody,
  SubmitOptions,
  Usage,
  WorkerInfo,
} from './types.js';

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

export type Finished<J extends { status: string }> = J & { status: 'succeeded' | 'failed' | 'canceled' };

const FINAL = new Set(['succeeded', 'failed', 'canceled']);
export const isFinished = (job: { status: string }): boolean => FINAL.has(job.status);

const defaultUrl = (): string =>
  (globalThis as { location?: { origin?: string } }).location?.origin ?? 'http://127.0.0.1:8080';

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** Transient trouble a waiting client should ride out: the hub or its Redis briefly away. */
const transient = (err: unknown) =>
  err instanceof ModelHubConnectionError ||
  (err instanceof ModelHubError && (err.error_code === ErrorCodes.STORE_UNAVAILABLE.code || err.status === 502));

/** The spec output of a finished job; throws its spec error when it failed or was canceled. */
export function outputOf<O>(job: Job<O>): O {
  if (job.status === 'succeeded' && job.output) return job.output as O;
  const body = (job.output as SpecErrorBody | undefined) ?? {
    success: false,
    error_code: ErrorCodes.INTERNAL.code,
    error_msg: `job ${job.id} is ${job.status}`,
    request_id: job.id,
  };
  throw new ModelHubError({ ...body, request_id: body.request_id ?? job.id }, statusOfErrorCode(body.error_code));
}

export class ModelHub {
  readonly url: string;
  private readonly apiKey?: string;
  private readonly fetchImpl: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(options: ModelHubOptions = {}) {
    this.url = (options.url ?? defaultUrl()).replace(/\/+$/, '');
    if (options.apiKey) this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.headers = options.headers ?? {};
  }

  /** GET /v1/models: every model with its task, status, live workers and queue depth. */
  async models(options: { signal?: AbortSignal } = {}): Promise<ModelSummary[]> {
    return (await this.request<{ models: ModelSummary[] }>('GET', '/v1/models', options)).models;
  }

  /** GET /v1/models/{model}: its input schema, output fields, labels and batching. */
  model(name: ModelName, options: { signal?: AbortSignal } = {}): Promise<ModelDetail> {
    return this.request('GET', `/v1/models/${encodeURIComponent(name)}`, options);
  }

  /** GET /v1/models/{model}/example: a ready sample input. */
  example<M extends ModelName>(name: M, options: { signal?: AbortSignal } = {}): Promise<InputOf<M>> {
    return this.request('GET', `/v1/models/${encodeURIComponent(name)}/example`, options);
  }

  /**
   * POST /v1/models/{model}/jobs: enqueues a job. Answers the queued job (`status: "queued"`), or
   * the finished job when `waitS` is given and it finished in time, or the first job for a
   * repeated `idempotencyKey`.
   */
  submit<M extends ModelName>(model: M, input: InputOf<M>, options: SubmitOptions = {}): Promise<Job<OutputOf<M>>> {
    const body: SubmitBody<InputOf<M>> = { input };
    if (options.priority !== undefined) body.priority = options.priority;
    if (options.timeoutS !== undefined) body.timeout_s = options.timeoutS;
    if (options.webhook !== undefined) body.webhook = options.webhook;
    if (options.webhookEvents !== undefined) body.webhook_events_filter = options.webhookEvents;
    const headers: Record<string, string> = {};
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    if (options.waitS) headers.prefer = `wait=${Math.ceil(options.waitS)}`;
    return this.request('POST', `/v1/models/${encodeURIComponent(model)}/jobs`, {
      body,
      headers,
      signal: options.signal,
    });
  }

  /** GET /v1/jobs/{id}: the job as it stands (`waitS`: hold until it finishes, up to that long). */
  get<O = AnyOutput>(id: string, options: { waitS?: number; signal?: AbortSignal } = {}): Promise<Job<O>> {
    const headers: Record<string, string> = options.waitS ? { prefer: `wait=${Math.ceil(options.waitS)}` } : {};
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`, { headers, signal: options.signal });
  }

  /**
   * Waits until the job finishes and returns it, whatever its outcome (see `outputOf`). Each read
   * asks the hub to hold it (Prefer: wait); when the hub answers at once anyway, reads are spaced
   * with exponential backoff and jitter. Brief hub or Redis outages are ridden out.
   */
  async wait<O = AnyOutput>(job: string | Job<O>, options: WaitOptions = {}): Promise<Finished<Job<O>>> {
    const id = typeof job === 'string' ? job : job.id;
    if (typeof job !== 'string' && isFinished(job)) return job as Finished<Job<O>>;
    const deadline = options.timeoutS === undefined ? Infinity : Date.now() + options.timeoutS * 1000;
    const holdS = options.holdS ?? 20;
    const maxPollMs = options.maxPollMs ?? 5000;
    let pause = options.pollMs ?? 250;
    let last: Job<O> | undefined = typeof job === 'string' ? undefined : job;
    for (;;) {
      const remainingS = Math.floor((deadline - Date.now()) / 1000);
      const hold = Math.max(0, Math.min(holdS, remainingS));
      const asked = Date.now();
      try {
        last = await this.get<O>(id, { waitS: hold, signal: options.signal });
        options.onUpdate?.(last as Job<unknown> as Job);
        if (isFinished(last)) return last as Finished<Job<O>>;
      } catch (err) {
        if (!transient(err) || Date.now() >= deadline) throw err;
      }
      if (Date.now() >= deadline)
        throw new WaitTimeoutError(
          (last ?? {
            id,
            model: '',
            status: 'queued',
            created_at: '',
            urls: { get: `/v1/jobs/${id}`, cancel: `/v1/jobs/${id}/cancel` },
          }) as Job,
        );
      // A hold that came back early without a final status: the hub does not hold (or failed). Back off.
      if (hold === 0 || Date.now() - asked < hold * 500) {
        const jittered = pause * (0.8 + Math.random() * 0.4);
        await sleep(Math.min(jittered, Math.max(0, deadline - Date.now())), options.signal);
        pause = Math.min(pause * 2, maxPollMs);
      }
    }
  }

  /**
   * The spec output for one input: POST /v1/models/{model}/predict. If the hub's own wait limit
   * passes first (1502), keeps waiting on the job. Throws ModelHubError with the spec error when
   * the input is refused or the job fails.
   */
  async predict<M extends ModelName>(
    model: M,
    input: InputOf<M>,
    options: PredictOptions = {},
  ): Promise<PredictAnswer<M>> {
    const started = Date.now();
    try {
      return await this.request<PredictAnswer<M>>('POST', `/v1/models/${encodeURIComponent(model)}/predict`, {
        body: input,
        signal: options.signal,
      });
    } catch (err) {
      if (
        !(err instanceof ModelHubError) ||
        err.error_code !== ErrorCodes.WAIT_TIMEOUT.code ||
        !err.request_id ||
        options.waitBeyondLimit === false
      )
        throw err;
      const timeoutS =
        options.timeoutS === undefined ? undefined : Math.max(0, options.timeoutS - (Date.now() - started) / 1000);
      const job = await this.wait<OutputOf<M>>(err.request_id, {
        signal: options.signal,
        ...(timeoutS === undefined ? {} : { timeoutS }),
      });
      return outputOf(job);
    }
  }

  /** POST /v1/jobs/{id}/cancel: a queued job becomes canceled and never runs (409 once running). */
  cancel(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`, options);
  }

  /** DELETE /v1/jobs/{id}: removes a finished job's input and output (409 while queued or running). */
  delete(id: string, options: { signal?: AbortSignal } = {}): Promise<{ id: string; deleted: true }> {
    return this.request('DELETE', `/v1/jobs/${encodeURIComponent(id)}`, options);
  }

  /**
   * GET /v1/workers: live workers, their devices, models and load with an admin key (or an open
   * hub); with a tenant key only an empty list (tenants see counts: see `workerCounts`).
   */
  async workers(options: { signal?: AbortSignal } = {}): Promise<WorkerInfo[]> {
    return (await this.request<{ workers?: WorkerInfo[] }>('GET', '/v1/workers', options)).workers ?? [];
  }

  /**
   * GET /v1/usage: this key's tenant's waiting jobs and stored bytes per model, against its limits
   * (what a 429 with error_code 1402 was decided on). An admin key may pass another `tenant`.
   */
  usage(options: { tenant?: string; signal?: AbortSignal } = {}): Promise<Usage> {
    const query = options.tenant === undefined ? '' : `?tenant=${encodeURIComponent(options.tenant)}`;
    return this.request('GET', `/v1/usage${query}`, options.signal ? { signal: options.signal } : {});
  }

  /** GET /v1/workers as a tenant sees it: how many live workers, by device and by model. */
  async workerCounts(
    options: { signal?: AbortSignal } = {},
  ): Promise<{ count: number; by_device?: Record<string, number>; by_model?: Record<string, number> }> {
    return this.request('GET', '/v1/workers', options);
  }

  /** GET /healthz. */
  health(): Promise<{ status: string }> {
    return this.request('GET', '/healthz', {});
  }

  /** GET /readyz: resolves when the hub's Redis answers, else throws (HTTP 503). */
  ready(): Promise<{ status: string }> {
    return this.request('GET', '/readyz', {});
  }

  /**
   * POST /v1/models/{model}/batches: many inputs as one batch (sent as JSON; for uploads larger
   * than the hub's MAX_BODY_BYTES, POST a JSONL file with Content-Type application/x-ndjson).
   */
  submitBatch<M extends ModelName>(model: M, inputs: InputOf<M>[], options: BatchOptions = {}): Promise<Batch> {
    const body: Record<string, unknown> = { inputs };
    if (options.priority !== undefined) body.priority = options.priority;
    if (options.timeoutS !== undefined) body.timeout_s = options.timeoutS;
    if (options.webhook !== undefined) body.webhook = options.webhook;
    const headers: Record<string, string> =
      options.idempotencyKey !== undefined ? { 'idempotency-key': options.idempotencyKey } : {};
    return this.request('POST', `/v1/models/${encodeURIComponent(model)}/batches`, {
      body,
      headers,
      signal: options.signal,
    });
  }

  /** GET /v1/batches/{id}: status, counts, timestamps. */
  getBatch(id: string, options: { signal?: AbortSignal } = {}): Promise<Batch> {
    return this.request('GET', `/v1/batches/${encodeURIComponent(id)}`, options);
  }

  /** GET /v1/batches/{id}/results: the lines finished so far, in completion order or by `index`. */
  async batchResults<O = AnyOutput>(
    id: string,
    options: { order?: 'completion' | 'input'; signal?: AbortSignal } = {},
  ): Promise<BatchResultLine<O>[]> {
    const path = `/v1/batches/${encodeURIComponent(id)}/results?order=${options.order ?? 'completion'}`;
    const res = await this.send('GET', path, { signal: options.signal });
    const text = await res.text();
    if (!res.ok) this.fail('GET', path, res, text);
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as BatchResultLine<O>);
  }

  /** POST /v1/batches/{id}/cancel: the items not yet started are canceled; running ones finish. */
  cancelBatch(id: string, options: { signal?: AbortSignal } = {}): Promise<Batch> {
    return this.request('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`, options);
  }

  /**
   * GET /metrics: Prometheus text. The hub serves it on its metrics listener (API_METRICS_PORT),
   * not on the API's port: point a client at that address to use this.
   */
  async metrics(): Promise<string> {
    const res = await this.send('GET', '/metrics', {});
    return res.text();
  }

  /** GET /openapi.json. */
  openapi(): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json', {});
  }

  private async send(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers, ...options.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(this.url + path, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if ((err instanceof Error && err.name === 'AbortError') || options.signal?.aborted) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new ModelHubConnectionError(`cannot reach the hub at ${this.url}: ${reason}`, {
        cause: err,
      });
    }
  }

  private async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal | undefined },
  ): Promise<T> {
    const res = await this.send(method, path, options);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ModelHubConnectionError(
        `${method} ${path}: HTTP ${res.status} with a body that is not JSON (is ${this.url} a ModelHub?)`,
      );
    }
    if (res.ok) return parsed as T;
    this.fail(method, path, res, text);
  }

  /** A non-2xx answer: the hub's spec error as ModelHubError (with Retry-After), anything else as a connection error. */
  private fail(method: string, path: string, res: Response, text: string): never {
    let body: Partial<SpecErrorBody> | undefined;
    try {
      body = text ? (JSON.parse(text) as Partial<SpecErrorBody>) : undefined;
    } catch {
      body = undefined;
    }
    if (body && body.success === false && typeof body.error_code === 'number') {
      const retryAfter = res.headers.get('retry-after');
      throw new ModelHubError(
        body as SpecErrorBody,
        res.status,
        retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined,
      );
    }
    throw new ModelHubConnectionError(`${method} ${path}: HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
}
