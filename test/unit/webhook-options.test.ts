import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { webhookOptions } from '../../shared/webhooks/options.js';
import { webhookJobOptions } from '../../shared/webhooks/events.js';

describe('webhook options, resolved once from the configuration', () => {
  it('has the defaults its type documents', () => {
    expect(webhookOptions(loadConfig({}))).toEqual({
      prefix: 'modelhub',
      secret: undefined,
      attempts: 12,
      backoffMs: 2000,
      timeoutMs: 10_000,
      allowPrivate: '',
      deliverInApi: true,
      retentionS: 86_400,
      recordTtlS: 90_000,
    });
  });

  it('takes each MODELHUB_WEBHOOK_* variable, and gives the events queue its retries and retention', () => {
    const options = webhookOptions(
      loadConfig({
        MODELHUB_PREFIX: 'hub2',
        MODELHUB_WEBHOOK_SECRET: 'a-plain-secret-of-24-chars',
        MODELHUB_WEBHOOK_ATTEMPTS: '3',
        MODELHUB_WEBHOOK_BACKOFF_MS: '100',
        MODELHUB_WEBHOOK_TIMEOUT_MS: '500',
        MODELHUB_WEBHOOK_ALLOW_PRIVATE: '10.0.0.0/8',
        MODELHUB_WEBHOOK_DELIVERY: 'off',
        MODELHUB_JOB_RETENTION_S: '60',
      }),
    );
    expect(options).toEqual({
      prefix: 'hub2',
      secret: 'a-plain-secret-of-24-chars',
      attempts: 3,
      backoffMs: 100,
      timeoutMs: 500,
      allowPrivate: '10.0.0.0/8',
      deliverInApi: false,
      retentionS: 60,
      recordTtlS: 3660,
    });
    expect(webhookJobOptions(options)).toEqual({
      attempts: 3,
      backoff: { type: 'exponential', delay: 100, jitter: 0.2 },
      removeOnComplete: { age: 60, count: 10_000 },
      removeOnFail: { age: 60, count: 10_000 },
    });
  });
});
