/**
 * The webhooks' settings in one place: their variables (part of the configuration schema,
 * shared/config.ts, with their defaults and checks), the options type that the delivery worker
 * and the events' queue take, and its resolution from a loaded configuration, done once by each
 * process's entry point (or startApi) and passed down.
 * A new webhook setting: its variable in WEBHOOK_SETTINGS, its field (documented, with its
 * default) in WebhookOptions and its line in webhookOptions, all here; then the code that uses it.
 */
import { z } from 'zod';
import type { Config } from '../config.js';
import { sideKeyTtlS } from '../jobs/retention.js';
import { int } from '../settings.js';

const MIN_WEBHOOK_SECRET_BYTES = 24;
const MIN_PLAIN_SECRET_CHARS = 16;

/**
 * A webhook secret, checked strictly so the hub, the SDK's verifier and the official
 * `standardwebhooks` library (what receivers use) derive the same key from it:
 * - `whsec_` + standard base64 (A-Z a-z 0-9 + /, padded) of at least 24 bytes: the library
 *   decodes exactly this (base64url's - and _ make it throw "Base64Coder: incorrect characters");
 * - or a plain string of at least 16 printable ASCII characters, used as its bytes: receivers
 *   pass it with `{format: 'raw'}`. ASCII only: the library takes each character's low byte, the
 *   SDK its UTF-8 bytes, and only for ASCII are they the same.
 * Returns why a secret is refused, or null.
 */
export function webhookSecretProblem(secret: string): string | null {
  if (secret.startsWith('whsec_')) {
    const text = secret.slice('whsec_'.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0)
      return 'after whsec_ must come standard base64 (A-Z, a-z, 0-9, + and /, padded with =; not base64url), as the standardwebhooks library decodes it';
    if (Buffer.from(text, 'base64').length < MIN_WEBHOOK_SECRET_BYTES)
      return `whsec_ + base64 must hold at least ${MIN_WEBHOOK_SECRET_BYTES} bytes (32 random bytes is the usual form)`;
    return null;
  }
  if (!/^[\x20-\x7e]*$/.test(secret))
    return 'a plain secret must be printable ASCII (receivers verify it with standardwebhooks `{format: "raw"}`, which reads one byte per character); or use whsec_ + base64';
  if (secret.length < MIN_PLAIN_SECRET_CHARS)
    return `a plain secret must be at least ${MIN_PLAIN_SECRET_CHARS} characters (or whsec_ + base64 of ${MIN_WEBHOOK_SECRET_BYTES} bytes)`;
  return null;
}

/** The webhooks' variables (each read as MODELHUB_<name>; shared/config.ts envName). */
export const WEBHOOK_SETTINGS = {
  /** Webhook signing secret (Standard Webhooks: "whsec_<base64>" or plain printable ASCII; webhookSecretProblem). Unset: webhooks are refused. */
  WEBHOOK_SECRET: z
    .string()
    .superRefine((s, ctx) => {
      const problem = webhookSecretProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /** Delivery attempts per event; with the default backoff 12 attempts span about 68 minutes. */
  WEBHOOK_ATTEMPTS: int(12),
  /** First retry delay, ms; doubles each attempt, with 20 % jitter. */
  WEBHOOK_BACKOFF_MS: int(2000),
  /** Per-attempt timeout, ms. */
  WEBHOOK_TIMEOUT_MS: int(10_000),
  /** Private/loopback targets allowed anyway: comma-separated CIDRs (e.g. 10.0.0.0/8,127.0.0.1/32). */
  WEBHOOK_ALLOW_PRIVATE: z.string().default(''),
  /** Run the webhook delivery worker inside the API process (`on`) or only in `npm run start:webhooks` (`off`). */
  WEBHOOK_DELIVERY: z.enum(['on', 'off']).default('on'),
};

/** What the webhook delivery worker and the webhooks queue's producers (API, workers) take. */
export interface WebhookOptions {
  /**
   * Key prefix of the hub's queues and keys.
   * @defaultValue `modelhub` (MODELHUB_PREFIX)
   */
  prefix: string;
  /**
   * Signing secret; without one, requests that ask for a webhook are refused and no delivery
   * worker runs.
   * @defaultValue unset (MODELHUB_WEBHOOK_SECRET)
   */
  secret: string | undefined;
  /**
   * Delivery attempts per event.
   * @defaultValue 12 (MODELHUB_WEBHOOK_ATTEMPTS)
   */
  attempts: number;
  /**
   * First retry delay, ms; doubles each attempt, with 20 % jitter.
   * @defaultValue 2000 (MODELHUB_WEBHOOK_BACKOFF_MS)
   */
  backoffMs: number;
  /**
   * Per-attempt timeout, ms.
   * @defaultValue 10000 (MODELHUB_WEBHOOK_TIMEOUT_MS)
   */
  timeoutMs: number;
  /**
   * Private or loopback targets allowed anyway: comma-separated CIDRs.
   * @defaultValue `''`: none (MODELHUB_WEBHOOK_ALLOW_PRIVATE)
   */
  allowPrivate: string;
  /**
   * Whether the API process runs a delivery worker (otherwise only `npm run start:webhooks` does).
   * @defaultValue true (MODELHUB_WEBHOOK_DELIVERY=on)
   */
  deliverInApi: boolean;
  /**
   * Events (queue entries) are kept this long after they end, seconds: finished jobs' retention.
   * @defaultValue 86400 (MODELHUB_JOB_RETENTION_S)
   */
  retentionS: number;
  /**
   * TTL of a job's delivery record, seconds: it outlives the job (retention + 1 h).
   * @defaultValue 90000
   */
  recordTtlS: number;
}

export function webhookOptions(config: Config): WebhookOptions {
  return {
    prefix: config.MODELHUB_PREFIX,
    secret: config.WEBHOOK_SECRET,
    attempts: config.WEBHOOK_ATTEMPTS,
    backoffMs: config.WEBHOOK_BACKOFF_MS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    deliverInApi: config.WEBHOOK_DELIVERY === 'on',
    retentionS: config.JOB_RETENTION_S,
    recordTtlS: sideKeyTtlS(config),
  };
}
