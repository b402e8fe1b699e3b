/**
 * Process configuration, read once from the environment and validated with zod so a typo in
 * a deployment fails at start-up with the variable's name, not later with a confusing error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describeIssue } from './validation.js';
import { int, ranged } from './settings.js';
import { WEBHOOK_SETTINGS } from './webhooks/options.js';
import { BATCHER_SETTINGS } from './options/batcher.js';
import { WORKER_SETTINGS } from './options/worker.js';
import { INTAKE_SETTINGS } from './options/intake.js';
import { TENANCY_SETTINGS } from './options/tenancy.js';
import { API_SETTINGS } from './options/api.js';

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
  /** The API's settings: shared/options/api.ts. */
  ...API_SETTINGS,
  /** Threads for parsing large request bodies (API, OFFLOOP_PARSE_BYTES) and for heavy postprocessing (worker), per process; 0 = half the cores, 1 to 4. */
  OFFLOOP_THREADS: int(0),
  /** What the API accepts before a job is queued: shared/options/intake.ts. */
  ...INTAKE_SETTINGS,
  /** Each tenant's rates and quotas: shared/options/tenancy.ts. */
  ...TENANCY_SETTINGS,
  /** Finished jobs (and their outputs) are kept this long, seconds, and at most this many per model. */
  JOB_RETENTION_S: ranged(24 * 3600, 1, 10 * 365 * 24 * 3600, ' (a finished job is kept at least a second to be read)'),
  JOB_RETENTION_COUNT: ranged(10_000, 1, 10_000_000, ' (the finish script keeps the job it just finished)'),
  /**
   * Bytes of finished jobs' results a model keeps (as stored in Redis); past it the oldest are
   * removed early. 0 = bounded by age and count only.
   */
  JOB_RETENTION_BYTES: ranged(GiB, 0, MAX_BYTES_SETTING),
  /** Attempts of a job whose failure is not the input's fault (e.g. a worker crash). */
  JOB_ATTEMPTS: int(3),
  /** Waiting jobs a model's queue accepts before answering 429. */
  QUEUE_MAX_WAITING: ranged(10_000, 1, 100_000_000),
  /**
   * Batches (POST /v1/models/{model}/batches). Items per queue entry (chunk): a worker takes a
   * chunk as one queue entry and feeds its items to the model's batcher, so Redis work per item
   * is about 1/BATCH_CHUNK_SIZE of a single job's. Independent of a model's max_batch_size.
   */
  BATCH_CHUNK_SIZE: ranged(64, 1, 10_000),
  /** A chunk closes early at this many input bytes (one chunk is one Redis value). */
  BATCH_CHUNK_BYTES: ranged(4 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  /** The webhooks' settings: shared/webhooks/options.ts. */
  ...WEBHOOK_SETTINGS,
  /** The worker's settings (and its fleet launcher's): shared/options/worker.ts. */
  ...WORKER_SETTINGS,
  /** How a worker feeds its models' batchers: shared/options/batcher.ts. */
  ...BATCHER_SETTINGS,
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** `auto`: human-readable lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
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
