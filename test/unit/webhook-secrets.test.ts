/**
 * Every webhook secret the hub accepts at start-up is one the official `standardwebhooks` library
 * (what receivers use) and the SDK's verifier derive the same key from; anything else is refused
 * at start-up naming WEBHOOK_SECRET and the form expected (issue 28).
 */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { signWebhook } from '../../shared/webhooks/signature.js';
import { verifyWebhook as sdkVerify } from '../../clients/typescript/src/webhooks.js';

// 32 bytes whose base64 holds + and / (base64url would hold - and _).
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => 250 - i * 3));
const WHSEC = `whsec_${KEY.toString('base64')}`;
const PLAIN = 'a plain secret, printable ASCII ~!';

describe('webhook secrets', () => {
  it('the official library verifies deliveries signed with each accepted form (whsec_ as is, plain with format raw), as the SDK does', async () => {
    for (const [secret, official] of [
      [WHSEC, new Webhook(WHSEC)],
      [PLAIN, new Webhook(PLAIN, { format: 'raw' })],
    ] as const) {
      expect(loadConfig({ WEBHOOK_SECRET: secret }).WEBHOOK_SECRET).toBe(secret);
      const body = JSON.stringify({ id: 'job-1', model: 'm', status: 'succeeded', created_at: 'x' });
      const headers = signWebhook(secret, 'msg_job-1_completed', body);
      expect(official.verify(body, { ...headers })).toMatchObject({ id: 'job-1' });
      await expect(sdkVerify(secret, body, { ...headers })).resolves.toMatchObject({ id: 'job-1' });
    }
  });

  it('refuses at start-up what the official library or the SDK would read differently, naming the setting', () => {
    const refused: [string, RegExp][] = [
      // Non-ASCII: the library takes each character's low byte, the SDK its UTF-8 bytes.
      ['a plain secret with é and ü, long', /printable ASCII/],
      ['tab\tseparated secret values', /printable ASCII/],
      // base64url: the library throws "Base64Coder: incorrect characters".
      [`whsec_${KEY.toString('base64url')}`, /standard base64/],
      [`whsec_${KEY.toString('base64').replace(/=+$/, '')}`, /standard base64/],
      [`whsec_${Buffer.alloc(16, 7).toString('base64')}`, /at least 24 bytes/],
      ['too short', /at least 16 characters/],
    ];
    for (const [secret, why] of refused) {
      let message = '';
      try {
        loadConfig({ WEBHOOK_SECRET: secret });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, secret).toMatch(/WEBHOOK_SECRET/);
      expect(message, secret).toMatch(why);
    }
    // What the old check let through and a receiver could never verify with the official library.
    expect(() => new Webhook(`whsec_${KEY.toString('base64url')}`)).toThrow(/incorrect characters/);
  });
});
