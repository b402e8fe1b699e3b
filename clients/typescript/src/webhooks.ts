/**
 * Verifying the hub's webhook deliveries (Standard Webhooks): webhook-signature is
 * "v1,<base64 HMAC-SHA256 of id.timestamp.body>" (several may be listed, space-separated), and
 * webhook-timestamp must be within the tolerance of now. WebCrypto only, so it runs in Node ≥ 20,
 * browsers, Deno and edge runtimes alike.
 */
import { WebhookVerificationError } from './errors.js';
import type { AnyOutput, Job } from './types.js';

export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Largest accepted distance between webhook-timestamp and now, seconds (default 300). */
  toleranceS?: number;
  /** The current time (for tests). */
  now?: Date;
}

const encoder = new TextEncoder();

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** The key bytes: "whsec_<base64>" as the hub documents, any other string as its UTF-8 bytes. */
function keyBytes(secret: string): Uint8Array {
  if (!secret.startsWith('whsec_')) return encoder.encode(secret);
  try {
    return base64ToBytes(secret.slice('whsec_'.length));
  } catch {
    throw new WebhookVerificationError('the secret starts with whsec_ but the rest is not base64');
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Computes "v1,<signature>" for a delivery: what the hub sends in webhook-signature. */
export async function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    keyBytes(secret) as BufferSource,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const bodyBytes = typeof body === 'string' ? encoder.encode(body) : body;
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.length + bodyBytes.length);
  content.set(prefix);
  content.set(bodyBytes, prefix.length);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, content as BufferSource));
  return `v1,${bytesToBase64(mac)}`;
}

/**
 * Checks a delivery and returns the job it carries. Pass the raw body exactly as received (not
 * re-serialized JSON) and the request headers. Throws WebhookVerificationError when a header is
 * missing, the timestamp is outside the tolerance, or no signature matches.
 */
export async function verifyWebhook<O = AnyOutput>(
  secret: string,
  rawBody: string | Uint8Array,
  headers: HeaderBag,
  options: VerifyOptions = {},
): Promise<Job<O>> {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures)
    throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature header');
  const ts = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || !Number.isSafeInteger(ts))
    throw new WebhookVerificationError('webhook-timestamp is not a number of seconds');
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceS ?? 300;
  if (Math.abs(now - ts) > tolerance)
    throw new WebhookVerificationError(`webhook-timestamp is more than ${tolerance}s away from now`);
  const expected = await signWebhook(secret, id, ts, rawBody);
  const matched = signatures.split(' ').some((s) => constantTimeEqual(s, expected));
  if (!matched) throw new WebhookVerificationError('no webhook-signature matches the body');
  const text = typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody);
  return JSON.parse(text) as Job<O>;
}
