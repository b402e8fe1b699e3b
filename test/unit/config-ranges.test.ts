import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';

describe('settings checked at start-up', () => {
  it('refuses JOB_RETENTION_COUNT=0 (the finish script removed the job it had just kept), naming the setting', () => {
    expect(() => loadConfig({ JOB_RETENTION_COUNT: '0' })).toThrow(/JOB_RETENTION_COUNT.*at least 1/);
    expect(loadConfig({ JOB_RETENTION_COUNT: '1' }).JOB_RETENTION_COUNT).toBe(1);
  });

  it('checks the ranges of the retention, quota, rate and size settings, naming each', () => {
    const refused: [string, string, RegExp][] = [
      ['JOB_RETENTION_S', '0', /at least 1/],
      ['JOB_RETENTION_BYTES', '-1', /at least 0/],
      ['TENANT_MAX_WAITING', '1e12', /at most/],
      ['TENANT_MAX_STORED_BYTES', '1.5', /whole number/],
      ['TENANT_RATE_RPS', '-5', /at least 0/],
      ['TENANT_RATE_BYTES_PER_S', '1e20', /at most/],
      ['QUEUE_MAX_WAITING', '0', /at least 1/],
      ['MAX_IMAGE_BYTES', '0', /at least 1/],
      ['MAX_IMAGE_PIXELS', '0', /at least 1/],
      ['MAX_RESULT_BYTES', '0', /at least 1/],
      ['MAX_BODY_BYTES', '10', /1024/],
      ['MAX_JSON_VALUES', '0', /at least 1/],
      ['BATCH_CHUNK_SIZE', '0', /at least 1/],
      ['BATCH_MAX_ITEMS', '0', /at least 1/],
      ['BATCH_MAX_BYTES', '10', /at least 1024/],
    ];
    for (const [name, value, why] of refused) {
      let message = '';
      try {
        loadConfig({ [name]: value });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, `${name}=${value}`).toMatch(new RegExp(name));
      expect(message, `${name}=${value}`).toMatch(why);
    }
    // 0 stays "off" where it means off.
    expect(loadConfig({ TENANT_MAX_WAITING: '0', TENANT_MAX_STORED_BYTES: '0', TENANT_RATE_RPS: '0' })).toMatchObject({
      TENANT_MAX_WAITING: 0,
      TENANT_MAX_STORED_BYTES: 0,
      TENANT_RATE_RPS: 0,
    });
  });
});
