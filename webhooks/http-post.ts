/** The webhook HTTP client: one POST to a target the policy allows, no redirects followed. */
import http from 'node:http';
import https from 'node:https';
import { VERSION } from '../shared/version.js';
import type { WebhookTargetPolicy } from '../shared/webhooks/target-policy.js';

/** One POST; resolves with the HTTP status (3xx included: redirects are not followed). */
export function postOnce(
  url: URL,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  policy: WebhookTargetPolicy,
): Promise<number> {
  try {
    policy.checkLiteralHost(url);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: 'POST',
        lookup: policy.lookup,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': `modelhub-webhooks/${VERSION}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end(body);
  });
}
