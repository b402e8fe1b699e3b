import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postOnce } from '../../webhooks/http-post.js';
import { signWebhook, verifyWebhook, WebhookVerificationError } from '../../shared/webhooks/signature.js';
import { WebhookTargetError, WebhookTargetPolicy } from '../../shared/webhooks/target-policy.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

describe('webhook signatures (Standard Webhooks)', () => {
  it('signs "id.timestamp.body" with HMAC-SHA256 of the whsec_ key, as an independent HMAC computes it', () => {
    const body = JSON.stringify({ id: 'job-1', status: 'succeeded' });
    const at = new Date('2026-11-28T12:00:00Z');
    const h = signWebhook(secret, 'msg_job-1_completed', body, at);
    expect(h['webhook-id']).toBe('msg_job-1_completed');
    expect(h['webhook-timestamp']).toBe(String(at.getTime() / 1000));
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key)
      .update(`msg_job-1_completed.${h['webhook-timestamp']}.${body}`)
      .digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${expected}`);
  });

  it("the receivers' helper accepts a genuine delivery and refuses a tampered or stale one", () => {
    const body = JSON.stringify({ id: 'job-2', status: 'failed' });
    const h = signWebhook(secret, 'msg_job-2_completed', body);
    expect(verifyWebhook(secret, body, { ...h })).toEqual({ id: 'job-2', status: 'failed' });
    expect(() => verifyWebhook(secret, body.replace('failed', 'succeeded'), { ...h })).toThrow(
      WebhookVerificationError,
    );
    const stale = signWebhook(secret, 'msg_job-2_completed', body, new Date(Date.now() - 3600_000));
    expect(() => verifyWebhook(secret, body, { ...stale })).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook('whsec_' + Buffer.from('another key').toString('base64'), body, { ...h })).toThrow(
      WebhookVerificationError,
    );
  });

  it('accepts a plain-string secret too', () => {
    const h = signWebhook('plain secret', 'msg_x', '{}');
    expect(verifyWebhook('plain secret', '{}', { ...h })).toEqual({});
  });
});

describe('webhook target policy (SSRF)', () => {
  const policy = new WebhookTargetPolicy('');
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
    '::ffff:7f00:1',
    '::7f00:1',
    '64:ff9b::7f00:1',
    '2002:7f00:1::1',
    'fec0::1',
  ])('refuses %s', (addr) => expect(policy.isAllowedAddress(addr)).toBe(false));
  it.each(['93.184.216.34', '8.8.8.8', '2606:4700::1111'])('allows public %s', (addr) =>
    expect(policy.isAllowedAddress(addr)).toBe(true),
  );

  it('allows listed private ranges only', () => {
    const p = new WebhookTargetPolicy('127.0.0.1/32, 10.0.0.0/8');
    expect(p.isAllowedAddress('127.0.0.1')).toBe(true);
    expect(p.isAllowedAddress('10.9.9.9')).toBe(true);
    expect(p.isAllowedAddress('127.0.0.2')).toBe(false);
    expect(() => new WebhookTargetPolicy('not-a-cidr')).toThrow(WebhookTargetError);
  });

  it('refuses non-http(s) URLs and URLs with credentials', () => {
    expect(() => policy.checkUrl('ftp://example.com/x')).toThrow(/http\(s\)/);
    expect(() => policy.checkUrl('file:///etc/passwd')).toThrow(/http\(s\)/);
    expect(() => policy.checkUrl('https://user:pw@example.com/')).toThrow(/credentials/);
    expect(policy.checkUrl('https://example.com/hook').hostname).toBe('example.com');
  });

  describe('at delivery time, after DNS', () => {
    let receiver: Receiver;
    beforeAll(async () => {
      receiver = await startReceiver(() => 302);
    });
    afterAll(async () => receiver.close());

    it('refuses a name that resolves to loopback before connecting', async () => {
      const url = new URL(receiver.url.replace('127.0.0.1', 'localhost'));
      await expect(postOnce(url, '{}', {}, 2000, policy)).rejects.toBeInstanceOf(WebhookTargetError);
      await expect(postOnce(new URL(receiver.url), '{}', {}, 2000, policy)).rejects.toBeInstanceOf(WebhookTargetError);
      expect(receiver.deliveries).toHaveLength(0);
    });

    it('delivers to an allowed host name (resolved, every address checked)', async () => {
      const allowed = new WebhookTargetPolicy('127.0.0.0/8,::1/128');
      const url = new URL(receiver.url.replace('127.0.0.1', 'localhost'));
      await expect(postOnce(url, '{"b":2}', {}, 2000, allowed)).resolves.toBe(302);
      expect(receiver.deliveries.at(-1)?.body).toBe('{"b":2}');
    });

    it('delivers to an allowed target and does not follow redirects', async () => {
      const allowed = new WebhookTargetPolicy('127.0.0.1/32');
      const before = receiver.deliveries.length;
      await expect(postOnce(new URL(receiver.url), '{"a":1}', { 'webhook-id': 'msg_1' }, 2000, allowed)).resolves.toBe(
        302,
      );
      expect(receiver.deliveries).toHaveLength(before + 1);
      expect(receiver.deliveries.at(-1)?.headers['webhook-id']).toBe('msg_1');
    });
  });
});
