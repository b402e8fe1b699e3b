/** The resolvers beyond their documented defaults (test/unit/options-docs.test.ts): derived values, variables by either name, nesting. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { apiOptions } from '../../shared/options/api.js';
import { intakeOptions } from '../../shared/options/intake.js';
import { tenancyOptions } from '../../shared/options/tenancy.js';
import { webhookOptions } from '../../shared/webhooks/options.js';

describe('API options, resolved once from the configuration', () => {
  it('have the defaults their type documents, and hold the intake, tenancy and webhook options', () => {
    const config = loadConfig({});
    const { intake, tenancy, webhooks, ...own } = apiOptions(config);
    expect(own).toMatchObject({
      prefix: 'modelhub',
      host: '127.0.0.1',
      port: 8080,
      metricsHost: '127.0.0.1',
      metricsPort: 9463,
      metricsRefreshMs: 1000,
      apiKeys: undefined,
      allowAnonymous: false,
      predictWaitS: 60,
      predictCoalesceMs: 1,
      predictHoldMs: 50,
      reconcilePeriodMs: 30_000,
    });
    expect(intake).toEqual(intakeOptions(config));
    expect(tenancy).toEqual(tenancyOptions(config));
    expect(webhooks).toEqual(webhookOptions(config));
  });

  it('takes each variable, PORT and HOST by their platform names, the others by MODELHUB_ or the deprecated name', () => {
    const options = apiOptions(
      loadConfig({
        HOST: '0.0.0.0',
        PORT: '80',
        MODELHUB_API_METRICS_PORT: '0',
        API_METRICS_HOST: '10.0.0.1',
        MODELHUB_API_METRICS_REFRESH_MS: '250',
        MODELHUB_API_KEYS: 'k1:acme',
        MODELHUB_ALLOW_ANONYMOUS: 'true',
        PREDICT_WAIT_S: '5',
        MODELHUB_PREDICT_COALESCE_MS: '0',
        MODELHUB_PREDICT_HOLD_MS: '0',
        MODELHUB_RECONCILE_PERIOD_MS: '0',
      }),
    );
    expect(options).toMatchObject({
      host: '0.0.0.0',
      port: 80,
      metricsPort: 0,
      metricsHost: '10.0.0.1',
      metricsRefreshMs: 250,
      apiKeys: 'k1:acme',
      allowAnonymous: true,
      predictWaitS: 5,
      predictCoalesceMs: 0,
      predictHoldMs: 0,
      reconcilePeriodMs: 0,
    });
  });
});
