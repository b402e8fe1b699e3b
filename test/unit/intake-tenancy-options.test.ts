/** The resolvers beyond their documented defaults (test/unit/options-docs.test.ts): derived values, variables by either name, nesting. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { intakeOptions } from '../../shared/options/intake.js';
import { tenancyOptions, tenantLimits } from '../../shared/options/tenancy.js';
import { limitsOf } from '../../shared/tenant-limits.js';

describe('intake and tenancy options, resolved once from the configuration', () => {
  it('have the defaults their types document', () => {
    const config = loadConfig({});
    expect(intakeOptions(config)).toMatchObject({
      bodyLimitBytes: 28_027_564,
      parsingBytes: 4 * 28_027_564,
      offloopParseBytes: 64 * 1024,
      offloopThreads: 0,
      maxJsonValues: 100_000,
      maxImageBytes: 20 * 1024 * 1024,
      maxImagePixels: 40_000_000,
      maxResultBytes: 32 * 1024 * 1024,
      batchMaxItems: 50_000,
      batchMaxBytes: 128 * 1024 * 1024,
      batchMaxLineBytes: 32 * 1024 * 1024,
    });
    expect(tenancyOptions(config)).toMatchObject({
      rateRps: 50,
      rateBytesPerS: 50 * 1024 * 1024,
      maxWaiting: 1000,
      priorityCeiling: 3,
      maxStoredBytes: 256 * 1024 * 1024,
      maxBatchItems: 100_000,
      overrides: {},
    });
  });

  it('derives the body limit from the image limit unless it is set, and the parse budget from the body limit', () => {
    // A small image limit keeps the 1 MiB floor, so an oversized image still gets the image's error.
    expect(intakeOptions(loadConfig({ MODELHUB_MAX_IMAGE_BYTES: '1000' })).bodyLimitBytes).toBe(1024 * 1024);
    expect(intakeOptions(loadConfig({ MODELHUB_MAX_IMAGE_BYTES: '3000000' })).bodyLimitBytes).toBe(4_000_000 + 65_536);
    const set = intakeOptions(loadConfig({ MAX_BODY_BYTES: '5000', MODELHUB_MAX_PARSING_BYTES: '9000' }));
    expect(set).toMatchObject({ bodyLimitBytes: 5000, parsingBytes: 9000 });
    expect(intakeOptions(loadConfig({ MODELHUB_MAX_BODY_BYTES: '5000' })).parsingBytes).toBe(20_000);
  });

  it('gives a tenant its overrides over the defaults, the same as from the configuration', () => {
    const config = loadConfig({
      MODELHUB_TENANT_RATE_RPS: '7',
      TENANT_MAX_WAITING: '9',
      MODELHUB_TENANT_LIMITS: JSON.stringify({ acme: { rate_rps: 100, priority_ceiling: 1 } }),
    });
    const tenancy = tenancyOptions(config);
    expect(limitsOf(tenancy, 'acme')).toMatchObject({ rateRps: 100, priorityCeiling: 1, maxWaiting: 9 });
    expect(limitsOf(tenancy, 'other')).toMatchObject({ rateRps: 7, priorityCeiling: 3, maxWaiting: 9 });
    for (const tenant of ['acme', 'other', null, 'constructor'])
      expect(limitsOf(tenancy, tenant)).toEqual(tenantLimits(config, tenant));
  });
});
