/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): headers webhook-id,
 * webhook-timestamp and webhook-signature = "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
 * `verifyWebhook` is the helper for receivers: pass the raw body and the headers.
 */
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

export { WebhookVerificationError };

/** Accepts the "whsec_<base64>" form or any other string (used as the raw key bytes). */
function webhookFor(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
}

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signWebhook(secret: string, id: string, body: string, at: Date = new Date()): SignedHeaders {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': webhookFor(secret).sign(id, at, body),
  };
}

/**
 * Verifies a delivery (signature and a timestamp within 5 minutes) and returns the parsed
 * job object; throws WebhookVerificationError otherwise.
 */
export function verifyWebhook<T = unknown>(
  secret: string,
  rawBody: string | Buffer,
  headers: Record<string, string | string[] | undefined>,
): T {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  return webhookFor(secret).verify(rawBody, flat) as T;
}
