/**
 * Process configuration, read once from the environment and validated with zod so a typo in
 * a deployment fails at start-up with the variable's name, not later with a confusing error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describeIssue } from './validation.js';
import { parseTenantLimits, type TenantOverrides } from './tenant-limits.js';
import { int, ranged } from './settings.js';
import { WEBHOOK_SETTINGS } from './webhooks/options.js';

export { webhookSecretProblem } from './webhooks/options.js';

/**
 * The folder holding package.json (and models/): the nearest one above this file, so the same
 * answer comes from the TypeScript sources (shared/config.ts) and the compiled code
 * (dist/shared/config.js).
 */
export const REPO_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Worker i serves /metrics and /healthz on METRICS_PORT, by default this + WORKER_INDEX. */
const BASE_METRICS_PORT = 9464;

/** Also the bound where a caller passes no configuration (tools, tests). */
export const DEFAULT_MAX_RESULT_BYTES = 32 * 1024 * 1024;

const GiB = 1024 ** 3;
/** Byte counts Redis and Node can hold: a stored-bytes quota of a pebibyte is a typo. */
const MAX_BYTES_SETTING = 2 ** 50;

const EnvSchema = z.object({
  /** Redis for queues and job state. Unset: redis://127.0.0.1:6379. */
  REDIS_URL: z.string().default(DEFAULT_REDIS_URL),
  /**
   * Redis Cluster seed nodes, "host:port,host:port". When set, REDIS_URL is not used. Queue
   * names carry their own hash tags, so each model's queue lives in one slot.
   */
  REDIS_CLUSTER_NODES: z.string().optional(),
  /** Key prefix of every queue and key; lets several hubs (or test runs) share one Redis. */
  MODELHUB_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]+$/)
    .default('modelhub'),
  /** Folder of model manifests (one sub-folder per model with a manifest.json). */
  MODELHUB_MODELS_DIR: z.string().default(path.join(REPO_ROOT, 'models')),
  /** Where generated test models are written and looked up. */
  MODELHUB_GENERATED_DIR: z.string().default(path.join(REPO_ROOT, 'models', '.generated')),
  /**
   * Generated test models: `auto` serves one when a model's real weights are absent (labelled in
   * the catalog), `off` never, `always` even when real weights are present (tests of the stand-ins).
   */
  MODELHUB_TEST_MODELS: z.enum(['auto', 'off', 'always']).default('auto'),
  /** One more folder searched for model weights by file name (before the manifest's folder); models:fetch downloads into it. */
  MODELHUB_WEIGHTS_DIR: z.string().optional(),
  /** models:fetch: base URL that replaces each file's own url (`<mirror>/<file name>`), for air-gapped sites. */
  MODELHUB_WEIGHTS_MIRROR: z.url().optional(),
  HOST: z.string().default('127.0.0.1'),
  PORT: int(8080),
  /** Largest accepted request body, bytes (413 past it). Unset: derived from MAX_IMAGE_BYTES (base64 + 64 KiB). */
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(2 * GiB)
    .optional(),
  /** Most JSON values (array items, object members) in one request body, counted before parsing. */
  MAX_JSON_VALUES: ranged(100_000, 1, 100_000_000),
  /** Request body bytes the API receives and parses at once, all requests together (503 past it). Unset: 4 × the body limit. */
  MAX_PARSING_BYTES: z.coerce.number().int().min(1024).max(MAX_BYTES_SETTING).optional(),
  /** Request bodies larger than this many bytes are parsed (and a job's image decoded) in a thread, not on the API's event loop; 0 = never. */
  OFFLOOP_PARSE_BYTES: int(64 * 1024),
  /** Worker: output pixels (width × height; × masks for instance masks) past which postprocessing runs in a thread; 0 = never. */
  OFFLOOP_POSTPROCESS_PIXELS: int(500_000),
  /** Threads for that (API) and for heavy postprocessing (worker), per process; 0 = half the cores, 1 to 4. */
  OFFLOOP_THREADS: int(0),
  /** Per tenant (API key), per API process: requests per second (burst 2×) and body bytes per second (burst: 2× or one body). 0 = off. */
  TENANT_RATE_RPS: ranged(50, 0, 1_000_000),
  TENANT_RATE_BYTES_PER_S: ranged(50 * 1024 * 1024, 0, MAX_BYTES_SETTING),
  /** Largest decoded image file, bytes (413 past it). */
  MAX_IMAGE_BYTES: ranged(20 * 1024 * 1024, 1, GiB),
  /** Largest image in pixels, width × height (413 past it). */
  MAX_IMAGE_PIXELS: ranged(40_000_000, 1, 2 ** 40),
  /** Longest decode (and resize) of one image in a worker, seconds (sharp's own timeout; 422 past it). */
  IMAGE_DECODE_TIMEOUT_S: z.coerce.number().int().positive().default(10),
  /** Largest result a job may produce, bytes (estimated before it is built; 422 with error 1009 past it). */
  MAX_RESULT_BYTES: ranged(DEFAULT_MAX_RESULT_BYTES, 1, 2 * GiB),
  /** How long /predict and `Prefer: wait` may hold a response, seconds. */
  PREDICT_WAIT_S: int(60),
  /**
   * Coalescing window of `predict` calls, ms: while a call for a model is in flight, the next ones
   * wait up to this long (or until max_batch_size of them) and share one queue entry. A call
   * alone goes out at once. 0 turns coalescing off.
   */
  MODELHUB_PREDICT_COALESCE_MS: z.coerce.number().min(0).max(1000).default(1),
  /** Finished jobs (and their outputs) are kept this long, seconds, and at most this many per model. */
  JOB_RETENTION_S: ranged(24 * 3600, 1, 10 * 365 * 24 * 3600, ' (a finished job is kept at least a second to be read)'),
  JOB_RETENTION_COUNT: ranged(10_000, 1, 10_000_000, ' (the finish script keeps the job it just finished)'),
  /**
   * Bytes of finished jobs' results a model keeps (as stored in Redis); past it the oldest are
   * removed early. 0 = bounded by age and count only.
   */
  JOB_RETENTION_BYTES: ranged(GiB, 0, MAX_BYTES_SETTING),
  /**
   * A full pass of the reconciler (api/reconciler.ts) over each model's accounting records takes
   * at most this long, ms: after a crash or a cut-short DELETE, each tenant's counts are back to
   * the truth within it (plus 20 s for a submit whose job never appeared). 0 turns it off.
   */
  MODELHUB_RECONCILE_PERIOD_MS: z.coerce.number().int().nonnegative().default(30_000),
  /** Attempts of a job whose failure is not the input's fault (e.g. a worker crash). */
  JOB_ATTEMPTS: int(3),
  /** Waiting jobs a model's queue accepts before answering 429. */
  QUEUE_MAX_WAITING: ranged(10_000, 1, 100_000_000),
  /** Waiting jobs one tenant may have in one model's queue before 429 (0 = only QUEUE_MAX_WAITING). */
  TENANT_MAX_WAITING: ranged(1_000, 0, 100_000_000),
  /**
   * Bytes one tenant may hold in one model's queue: inputs of its jobs not yet finished plus its
   * retained results. A submit past it is refused (429) until jobs finish, are deleted
   * (DELETE /v1/jobs/{id}) or age out. 0 = no quota.
   */
  TENANT_MAX_STORED_BYTES: ranged(256 * 1024 * 1024, 0, MAX_BYTES_SETTING),
  /**
   * Batch items one tenant may have in flight (staged, not yet finished) in one model's bulk lane:
   * batch items do not count in TENANT_MAX_WAITING (a batch may hold 50,000). Their input bytes
   * count in TENANT_MAX_STORED_BYTES. 0 = no limit.
   */
  TENANT_MAX_BATCH_ITEMS: ranged(100_000, 0, 100_000_000),
  /**
   * Per-tenant overrides of the five TENANT_* limits: JSON {"<tenant>": {"rate_rps", "rate_bytes_per_s",
   * "max_waiting", "priority_ceiling", "max_stored_bytes"}} (any subset). See shared/tenant-limits.ts.
   */
  MODELHUB_TENANT_LIMITS: z
    .string()
    .transform((text, ctx): TenantOverrides => {
      try {
        return parseTenantLimits(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /**
   * Highest priority a tenant's key may ask for (1 is highest, 10 lowest): a request above it is
   * refused (400). Admin keys and an open API may use 1.
   */
  TENANT_PRIORITY_CEILING: z.coerce.number().int().min(1).max(10).default(3),
  /**
   * Batches (POST /v1/models/{model}/batches). Items per queue entry (chunk): a worker takes a
   * chunk as one queue entry and feeds its items to the model's batcher, so Redis work per item
   * is about 1/BATCH_CHUNK_SIZE of a single job's. Independent of a model's max_batch_size.
   */
  BATCH_CHUNK_SIZE: ranged(64, 1, 10_000),
  /** A chunk closes early at this many input bytes (one chunk is one Redis value). */
  BATCH_CHUNK_BYTES: ranged(4 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  /** Items one batch may hold. */
  BATCH_MAX_ITEMS: ranged(50_000, 1, 10_000_000),
  /** Bytes one batch upload may hold (its inputs are staged in Redis: keep it well under maxmemory). */
  BATCH_MAX_BYTES: ranged(128 * 1024 * 1024, 1024, MAX_BYTES_SETTING),
  /** Longest JSONL line, bytes; a longer line fails that item alone. */
  BATCH_MAX_LINE_BYTES: ranged(32 * 1024 * 1024, 1, 2 * GiB),
  /** Chunks one worker works on at once per model (the next is fetched while one finishes). */
  BATCH_WORKER_CHUNKS: int(2),
  /**
   * Worker: images over HEAVY_IMAGE_PIXELS (by their header) being worked on at once in one
   * worker, all models together; the rest wait their turn, so a few very large images cannot take
   * every core from other jobs. HEAVY_ITEMS_IN_FLIGHT 0 = half the cores (at least 1);
   * HEAVY_IMAGE_PIXELS 0 = no gate.
   */
  HEAVY_ITEMS_IN_FLIGHT: int(0),
  HEAVY_IMAGE_PIXELS: int(4_000_000),
  /** Bulk items one worker keeps in its model's batcher at once; 0 = 2 × max_batch_size. Interactive jobs are never held back. */
  BATCH_ITEMS_IN_FLIGHT: int(0),
  /**
   * Job lock held by the worker running it, ms (renewed at half this). A worker that dies (or
   * whose event loop stalls past it) loses its jobs: others pick them up after the lock expires
   * and the next stalled check runs. Inference runs off the event loop, so a long batch is fine.
   */
  MODELHUB_LOCK_MS: int(30_000),
  /** How often each worker looks for stalled jobs (a dead worker's), ms. */
  MODELHUB_STALLED_INTERVAL_MS: int(15_000),
  /** Times a job may be recovered from a dead worker before it fails (a job that kills its worker). */
  MODELHUB_MAX_STALLED: int(2),
  /** Worker heartbeat into the registry, ms; a worker silent for 3 heartbeats is dead. */
  MODELHUB_HEARTBEAT_MS: int(5_000),
  /** Longest graceful shutdown (finish the batch in flight), ms; then the worker exits 1. */
  SHUTDOWN_TIMEOUT_MS: int(30_000),
  /** CPU workers: onnxruntime intra-op threads (0 = all cores) and inter-op threads. */
  MODELHUB_INTRA_OP_THREADS: int(0),
  MODELHUB_INTER_OP_THREADS: int(1),
  /**
   * CPU workers: whether onnxruntime's threads spin-wait between runs. Off: on a machine whose
   * cores are shared with preprocessing (sharp) and the event loop, spinning burns CPU that
   * jobs need (measured: 2.6 ms of CPU per batch-1 run of text-direction).
   */
  MODELHUB_ORT_SPINNING: z.enum(['on', 'off']).default('off'),
  /**
   * Workers: `manifest` pads images to the shape buckets a model's manifest sets
   * (batching.pad_to_bucket); `off` ignores that setting (each image keeps its own tensor shape).
   */
  MODELHUB_PAD_TO_BUCKET: z.enum(['manifest', 'off']).default('manifest'),
  /** libvips threads per image operation in a worker (sharp.concurrency); images are small, jobs run side by side. */
  MODELHUB_SHARP_THREADS: int(1),
  /** CUDA workers: cap on onnxruntime's GPU memory arena, bytes (0 = none). */
  MODELHUB_CUDA_MEM_LIMIT: int(0),
  /**
   * The API's Prometheus listener (not the public PORT): loopback unless the deployment binds it
   * for its scraper. Queue gauges there are read from Redis when scraped; a scrape within
   * API_METRICS_REFRESH_MS of the last read is answered from it, so however many scrapers there
   * are, Redis sees at most one read per period.
   */
  API_METRICS_PORT: int(9463),
  API_METRICS_HOST: z.string().default('127.0.0.1'),
  API_METRICS_REFRESH_MS: z.coerce.number().int().positive().default(1000),
  /** Worker metrics/health port = METRICS_PORT (default 9464 + WORKER_INDEX). */
  WORKER_INDEX: int(0),
  METRICS_PORT: z.coerce.number().int().nonnegative().optional(),
  /**
   * API keys, "key:tenant" pairs separated by commas. Unset: the API is open (it says so at start).
   */
  MODELHUB_API_KEYS: z.string().optional(),
  /**
   * Without API keys the API refuses to start unless it listens on loopback only or this is
   * `true` (an open hub behind something else that authenticates).
   */
  MODELHUB_ALLOW_ANONYMOUS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** The webhooks' settings: shared/webhooks/options.ts. */
  ...WEBHOOK_SETTINGS,
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** `auto`: human-readable lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /** Worker: device (`cpu`, `cuda:N`) and models (`all` or a comma list) when --device / --models are not given. */
  MODELHUB_DEVICE: z.string().default('cpu'),
  MODELHUB_MODELS: z.string().default('all'),
  /** Fleet launcher: devices when --devices is not given, e.g. "cuda:0,cuda:1" or "cpu x2". */
  MODELHUB_DEVICES: z.string().default('cpu'),
  /** Fleet launcher: first restart delay of a worker that died, ms (unset: DEFAULT_RESTART's 1 s; doubles per crash up to 30 s). */
  FLEET_RESTART_BASE_MS: z.coerce.number().int().nonnegative().optional(),
});

export type Config = z.infer<typeof EnvSchema>;

/** A setting of the schema, by the name the code knows it by (its environment name less `MODELHUB_`). */
export type SettingKey = keyof typeof EnvSchema.shape;

/** Names every deployment platform uses for these, kept as they are (so are NODE_ENV and OTEL_*). */
const PLATFORM_NAMES: ReadonlySet<string> = new Set(['REDIS_URL', 'HOST', 'PORT', 'LOG_LEVEL']);

/**
 * The environment variable that sets `key`: `MODELHUB_` + the key, except the platform names. A
 * hub setting's name without the prefix (the name of earlier releases) still works for one
 * release, with a warning (deprecatedSettings).
 */
export function envName(key: string): string {
  return PLATFORM_NAMES.has(key) || key.startsWith('MODELHUB_') ? key : `MODELHUB_${key}`;
}

/** Every setting's environment variable, in the schema's order (the README's table lists them). */
export function settingNames(): string[] {
  return Object.keys(EnvSchema.shape).map(envName);
}

export interface DeprecatedSetting {
  /** The variable set, an earlier release's name. */
  name: string;
  /** Its name now. */
  use: string;
  /** Both were set: the old one was ignored. */
  ignored: boolean;
}

/** The settings given by an earlier release's name (unprefixed), to warn about at start-up. */
export function deprecatedSettings(env: NodeJS.ProcessEnv = process.env): DeprecatedSetting[] {
  const found: DeprecatedSetting[] = [];
  for (const key of Object.keys(EnvSchema.shape)) {
    const name = envName(key);
    if (name !== key && isSet(env[key])) found.push({ name: key, use: name, ignored: isSet(env[name]) });
  }
  return found;
}

/** Logs one warning per setting given by its old name (entry points call it once, after loadConfig). */
export function warnDeprecatedSettings(
  log: { warn: (fields: object, message: string) => void },
  env: NodeJS.ProcessEnv = process.env,
): void {
  for (const d of deprecatedSettings(env))
    log.warn(
      { setting: d.name, use: d.use },
      d.ignored
        ? `${d.name} is ignored: ${d.use} is set too (${d.name} is the deprecated name)`
        : `${d.name} is deprecated and will stop working in the next release: set ${d.use}`,
    );
}

// An empty variable (`FOO=` in a compose file) means "not set", not "set to nothing".
const isSet = (v: string | undefined): v is string => v !== undefined && v !== '';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const given: Record<string, string> = {};
  // The variable each setting came from, so a problem names what the operator wrote.
  const source = new Map<string, string>();
  for (const key of Object.keys(EnvSchema.shape)) {
    const name = envName(key);
    const value = isSet(env[name]) ? env[name] : name !== key && isSet(env[key]) ? env[key] : undefined;
    if (value === undefined) continue;
    given[key] = value;
    source.set(key, isSet(env[name]) ? name : key);
  }
  const parsed = EnvSchema.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      return describeIssue(key ? { ...issue, path: [source.get(key) ?? envName(key), ...issue.path.slice(1)] } : issue);
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * The request body limit: MAX_BODY_BYTES, or enough for the largest image as base64 plus 64 KiB
 * of JSON, and at least 1 MiB (so with a small image limit an oversized image still gets the
 * error that names the image, 1004, rather than the body's).
 */
export function bodyLimitBytes(config: Pick<Config, 'MAX_BODY_BYTES' | 'MAX_IMAGE_BYTES'>): number {
  return config.MAX_BODY_BYTES ?? Math.max(1024 * 1024, Math.ceil(config.MAX_IMAGE_BYTES / 3) * 4 + 64 * 1024);
}

export function parsingBytesLimit(
  config: Pick<Config, 'MAX_BODY_BYTES' | 'MAX_IMAGE_BYTES' | 'MAX_PARSING_BYTES'>,
): number {
  return config.MAX_PARSING_BYTES ?? 4 * bodyLimitBytes(config);
}

export function workerMetricsPort(config: Config): number {
  return config.METRICS_PORT ?? BASE_METRICS_PORT + config.WORKER_INDEX;
}

/** The fleet launcher's worker i: METRICS_PORT (default 9464) + i. */
export function fleetMetricsPort(config: Config, index: number): number {
  return (config.METRICS_PORT ?? BASE_METRICS_PORT) + index;
}
