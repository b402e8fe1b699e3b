/** MODELHUB_TENANT_LIMITS: parsing (errors name the tenant and the field), the accessor, and the rate limiter per tenant. */
import { describe, expect, it } from 'vitest';
import { tenantRateLimit } from '../../api/rate-limits.js';
import { loadConfig } from '../../shared/config.js';
import { tenantLimits } from '../../shared/options/tenancy.js';

const limitsEnv = (value: unknown) => ({
  MODELHUB_TENANT_LIMITS: typeof value === 'string' ? value : JSON.stringify(value),
});

describe('MODELHUB_TENANT_LIMITS', () => {
  it('refuses a bad value at start, naming the tenant and the field', () => {
    expect(() => loadConfig(limitsEnv({ acme: { rate_rps: -1 } }))).toThrow(
      'MODELHUB_TENANT_LIMITS: tenant "acme": rate_rps must be 0 or more',
    );
    expect(() => loadConfig(limitsEnv({ acme: { max_waiting: 1.5 } }))).toThrow(
      'tenant "acme": max_waiting must be an integer',
    );
    expect(() => loadConfig(limitsEnv({ acme: { priority_ceiling: 11 } }))).toThrow(
      'tenant "acme": priority_ceiling must be between 1 and 10',
    );
    expect(() => loadConfig(limitsEnv({ acme: { max_stored_bytes: '1G' } }))).toThrow(
      'tenant "acme": max_stored_bytes must be a number',
    );
    expect(() => loadConfig(limitsEnv({ ok: {}, acme: { rate: 5 } }))).toThrow(
      /tenant "acme": unknown field\(s\) rate \(known: rate_rps, rate_bytes_per_s, max_waiting, priority_ceiling, max_stored_bytes, max_batch_items\)/,
    );
    expect(() => loadConfig(limitsEnv({ acme: 5 }))).toThrow('tenant "acme": must be an object of limits');
    expect(() => loadConfig(limitsEnv('[]'))).toThrow('MODELHUB_TENANT_LIMITS: must be a JSON object');
    expect(() => loadConfig(limitsEnv('{acme}'))).toThrow(/MODELHUB_TENANT_LIMITS: not JSON/);
  });

  it('gives a tenant its overrides and everyone else the defaults, field by field', () => {
    const config = loadConfig({
      ...limitsEnv({
        acme: { rate_rps: 200, max_waiting: 0, priority_ceiling: 1, max_stored_bytes: 1024, max_batch_items: 5 },
        small: { rate_bytes_per_s: 1000 },
      }),
      TENANT_RATE_RPS: '7',
      TENANT_RATE_BYTES_PER_S: '7000',
      TENANT_MAX_WAITING: '70',
      TENANT_PRIORITY_CEILING: '4',
      TENANT_MAX_STORED_BYTES: '700000',
      TENANT_MAX_BATCH_ITEMS: '900',
    });
    expect(tenantLimits(config, 'acme')).toEqual({
      rateRps: 200,
      rateBytesPerS: 7000,
      maxWaiting: 0,
      priorityCeiling: 1,
      maxStoredBytes: 1024,
      maxBatchItems: 5,
    });
    expect(tenantLimits(config, 'small')).toEqual({
      rateRps: 7,
      rateBytesPerS: 1000,
      maxWaiting: 70,
      priorityCeiling: 4,
      maxStoredBytes: 700000,
      maxBatchItems: 900,
    });
    const defaults = {
      rateRps: 7,
      rateBytesPerS: 7000,
      maxWaiting: 70,
      priorityCeiling: 4,
      maxStoredBytes: 700000,
      maxBatchItems: 900,
    };
    expect(tenantLimits(config, 'other')).toEqual(defaults);
    expect(tenantLimits(config, null)).toEqual(defaults);
    // Not a prototype property by accident.
    expect(tenantLimits(config, 'constructor')).toEqual(defaults);
    expect(tenantLimits(loadConfig({}), 'acme').maxStoredBytes).toBe(loadConfig({}).TENANT_MAX_STORED_BYTES);
  });
});

describe('tenantRateLimit with per-tenant rates', () => {
  const req = (tenant: string, length = 0) =>
    ({ tenant, get: (h: string) => (h === 'content-length' ? String(length) : undefined) }) as any;
  const granted = (mw: ReturnType<typeof tenantRateLimit>, tenant: string, n: number, length = 0) => {
    let ok = 0;
    for (let i = 0; i < n; i++)
      mw(req(tenant, length), {} as any, (err?: unknown) => (err === undefined ? ok++ : undefined));
    return ok;
  };
  const rates: Record<string, { requestsPerS: number; bytesPerS: number }> = {
    acme: { requestsPerS: 3, bytesPerS: 0 },
    tiny: { requestsPerS: 0, bytesPerS: 100 },
    free: { requestsPerS: 0, bytesPerS: 0 },
  };

  it('holds each tenant to its own request rate (burst 2×), counted on a stopped clock', () => {
    const mw = tenantRateLimit({
      requestsPerS: 1,
      bytesPerS: 1000,
      bodyLimit: 10,
      ratesOf: (t) => rates[t] ?? { requestsPerS: 1, bytesPerS: 1000 },
      now: () => 0,
    });
    expect(granted(mw, 'acme', 20)).toBe(6);
    expect(granted(mw, 'bob', 20)).toBe(2);
    expect(granted(mw, 'carol', 20)).toBe(2);
    // 0 turns the request limit off for that tenant alone.
    expect(granted(mw, 'tiny', 50)).toBe(50);
  });

  it('and to its own byte rate', () => {
    const mw = tenantRateLimit({
      requestsPerS: 0,
      bytesPerS: 1000,
      bodyLimit: 10,
      ratesOf: (t) => rates[t] ?? { requestsPerS: 0, bytesPerS: 1000 },
      now: () => 0,
    });
    expect(granted(mw, 'tiny', 20, 10)).toBe(20); // burst 2 × 100 bytes
    expect(granted(mw, 'tiny', 20, 10)).toBe(0);
    expect(granted(mw, 'bob', 300, 10)).toBe(200); // burst 2 × 1000 bytes
    expect(granted(mw, 'free', 300, 10)).toBe(300); // both limits off for that tenant
  });
});
