/**
 * The API process's settings in one place: its variables (part of the configuration schema,
 * shared/config.ts, with their defaults and checks), the options type its routes take (with the
 * intake's, the tenants' and the webhooks' options inside), and its resolution from a loaded
 * configuration, done once by startApi (api/server.ts) and passed down in the API's context.
 * A new API setting: its variable in API_SETTINGS, its field (documented, with its default) in
 * ApiOptions and its line in apiOptions, all here; then the code that uses it.
 */
import { z } from 'zod';
import type { Config } from '../config.js';
import { int } from '../settings.js';
import { webhookOptions, type WebhookOptions } from '../webhooks/options.js';
import { intakeOptions, type IntakeOptions } from './intake.js';
import { tenancyOptions, type TenancyOptions } from './tenancy.js';

/** The API's variables (each read as MODELHUB_<name> but PORT; shared/config.ts envName). */
export const API_SETTINGS = {
  PORT: int(8080),
  /** How long /predict and `Prefer: wait` may hold a response, seconds. */
  PREDICT_WAIT_S: int(60),
  /**
   * Coalescing window of `predict` calls, ms: while a call for a model is in flight, the next ones
   * wait up to this long (or until max_batch_size of them) and share one queue entry. A call
   * alone goes out at once. 0 turns coalescing off.
   */
  MODELHUB_PREDICT_COALESCE_MS: z.coerce.number().min(0).max(1000).default(1),
  /**
   * Longest a coalesced entry holds for more calls, ms from its window's opening, while this API
   * already has a full batch of the model's calls per worker serving it queued and unanswered
   * (api/predict-coalescer.ts "Backlog hold"). Not more than the window: no hold.
   */
  MODELHUB_PREDICT_HOLD_MS: z.coerce.number().min(0).max(10_000).default(50),
  /**
   * A full pass of the reconciler (api/reconciler.ts) over each model's accounting records takes
   * at most this long, ms: after a crash or a cut-short DELETE, each tenant's counts are back to
   * the truth within it (plus 20 s for a submit whose job never appeared). 0 turns it off.
   */
  MODELHUB_RECONCILE_PERIOD_MS: z.coerce.number().int().nonnegative().default(30_000),
  /**
   * The API's Prometheus listener (not the public PORT): loopback unless the deployment binds it
   * for its scraper. Queue gauges there are read from Redis when scraped; a scrape within
   * API_METRICS_REFRESH_MS of the last read is answered from it, so however many scrapers there
   * are, Redis sees at most one read per period.
   */
  API_METRICS_PORT: int(9463),
  API_METRICS_HOST: z.string().default('127.0.0.1'),
  API_METRICS_REFRESH_MS: z.coerce.number().int().positive().default(1000),
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
};

/** What the API's routes take (api/context.ts), resolved by startApi. */
export interface ApiOptions {
  /**
   * Key prefix of the hub's queues and keys.
   * @defaultValue `modelhub` (MODELHUB_PREFIX)
   */
  prefix: string;
  /**
   * Interface the API listens on (and the metrics' host, unless set apart).
   * @defaultValue 127.0.0.1 (HOST)
   */
  host: string;
  /**
   * Port of the API; 0: any free one.
   * @defaultValue 8080 (PORT)
   */
  port: number;
  /** @defaultValue 127.0.0.1 (MODELHUB_API_METRICS_HOST) */
  metricsHost: string;
  /** Port of the Prometheus listener; 0: any free one. @defaultValue 9463 (MODELHUB_API_METRICS_PORT) */
  metricsPort: number;
  /**
   * A scrape within this long of the last Redis read of the queue gauges is answered from it, ms.
   * @defaultValue 1000 (MODELHUB_API_METRICS_REFRESH_MS)
   */
  metricsRefreshMs: number;
  /**
   * API keys, "key:tenant" pairs separated by commas (api/auth.ts parseApiKeys); none: the API is open.
   * @defaultValue unset (MODELHUB_API_KEYS)
   */
  apiKeys: string | undefined;
  /**
   * Start without API keys on an interface other than loopback (an open hub behind something else that authenticates).
   * @defaultValue false (MODELHUB_ALLOW_ANONYMOUS)
   */
  allowAnonymous: boolean;
  /**
   * Longest /predict and `Prefer: wait` hold a response, seconds.
   * @defaultValue 60 (MODELHUB_PREDICT_WAIT_S)
   */
  predictWaitS: number;
  /**
   * Coalescing window of `predict` calls for a model while one is in flight, ms; 0: off.
   * @defaultValue 1 (MODELHUB_PREDICT_COALESCE_MS)
   */
  predictCoalesceMs: number;
  /**
   * Longest a coalesced entry holds for more calls while the model's backlog is deep, or while
   * calls still arrive with some in flight, ms from its window's opening.
   * @defaultValue 50 (MODELHUB_PREDICT_HOLD_MS)
   */
  predictHoldMs: number;
  /**
   * Longest full pass of the reconciler over the accounting records, ms; 0: no reconciler.
   * @defaultValue 30000 (MODELHUB_RECONCILE_PERIOD_MS)
   */
  reconcilePeriodMs: number;
  /** What the API accepts before a job is queued. */
  intake: IntakeOptions;
  /** Each tenant's rates and quotas. */
  tenancy: TenancyOptions;
  /** Webhook signing, targets and, when `deliverInApi`, delivery. */
  webhooks: WebhookOptions;
}

export function apiOptions(config: Config): ApiOptions {
  return {
    prefix: config.MODELHUB_PREFIX,
    host: config.HOST,
    port: config.PORT,
    metricsHost: config.API_METRICS_HOST,
    metricsPort: config.API_METRICS_PORT,
    metricsRefreshMs: config.API_METRICS_REFRESH_MS,
    apiKeys: config.MODELHUB_API_KEYS,
    allowAnonymous: config.MODELHUB_ALLOW_ANONYMOUS,
    predictWaitS: config.PREDICT_WAIT_S,
    predictCoalesceMs: config.MODELHUB_PREDICT_COALESCE_MS,
    predictHoldMs: config.MODELHUB_PREDICT_HOLD_MS,
    reconcilePeriodMs: config.MODELHUB_RECONCILE_PERIOD_MS,
    intake: intakeOptions(config),
    tenancy: tenancyOptions(config),
    webhooks: webhookOptions(config),
  };
}
