import { describe, expect, it } from 'vitest';
import { deprecatedSettings, envName, loadConfig, settingNames, warnDeprecatedSettings } from '../../shared/config.js';

describe('setting names: MODELHUB_ prefix, earlier names as deprecated aliases', () => {
  it('names the hub’s own settings MODELHUB_…, and keeps the platform names', () => {
    expect(envName('MAX_IMAGE_BYTES')).toBe('MODELHUB_MAX_IMAGE_BYTES');
    expect(envName('MODELHUB_LOCK_MS')).toBe('MODELHUB_LOCK_MS');
    for (const platform of ['REDIS_URL', 'HOST', 'PORT', 'LOG_LEVEL']) expect(envName(platform)).toBe(platform);
    const names = settingNames();
    expect(names.filter((n) => !n.startsWith('MODELHUB_')).sort()).toEqual(['HOST', 'LOG_LEVEL', 'PORT', 'REDIS_URL']);
    expect(names).toContain('MODELHUB_WEBHOOK_SECRET');
    expect(names).not.toContain('WEBHOOK_SECRET');
  });

  it('reads a setting by its MODELHUB_ name and by its earlier name, which is reported as deprecated', () => {
    expect(loadConfig({ MODELHUB_MAX_IMAGE_BYTES: '1000' }).MAX_IMAGE_BYTES).toBe(1000);
    expect(loadConfig({ MAX_IMAGE_BYTES: '2000' }).MAX_IMAGE_BYTES).toBe(2000);
    expect(deprecatedSettings({ MODELHUB_MAX_IMAGE_BYTES: '1000', PORT: '80', LOG_LEVEL: 'warn' })).toEqual([]);
    expect(deprecatedSettings({ MAX_IMAGE_BYTES: '2000', WORKER_INDEX: '' })).toEqual([
      { name: 'MAX_IMAGE_BYTES', use: 'MODELHUB_MAX_IMAGE_BYTES', ignored: false },
    ]);
  });

  it('takes the MODELHUB_ name where both are set, and says the earlier one is ignored', () => {
    expect(loadConfig({ MODELHUB_MAX_IMAGE_BYTES: '1000', MAX_IMAGE_BYTES: '2000' }).MAX_IMAGE_BYTES).toBe(1000);
    const warnings: [object, string][] = [];
    warnDeprecatedSettings(
      { warn: (fields, message) => warnings.push([fields, message]) },
      {
        MODELHUB_MAX_IMAGE_BYTES: '1000',
        MAX_IMAGE_BYTES: '2000',
        WEBHOOK_ATTEMPTS: '3',
      },
    );
    expect(warnings).toEqual([
      [
        { setting: 'MAX_IMAGE_BYTES', use: 'MODELHUB_MAX_IMAGE_BYTES' },
        'MAX_IMAGE_BYTES is ignored: MODELHUB_MAX_IMAGE_BYTES is set too (MAX_IMAGE_BYTES is the deprecated name)',
      ],
      [
        { setting: 'WEBHOOK_ATTEMPTS', use: 'MODELHUB_WEBHOOK_ATTEMPTS' },
        'WEBHOOK_ATTEMPTS is deprecated and will stop working in the next release: set MODELHUB_WEBHOOK_ATTEMPTS',
      ],
    ]);
  });

  it('names the variable the operator set in a refusal', () => {
    expect(() => loadConfig({ MODELHUB_JOB_RETENTION_COUNT: '0' })).toThrow(
      /invalid configuration: MODELHUB_JOB_RETENTION_COUNT: must be at least 1/,
    );
    expect(() => loadConfig({ JOB_RETENTION_COUNT: '0' })).toThrow(
      /invalid configuration: JOB_RETENTION_COUNT: must be at least 1/,
    );
  });
});
