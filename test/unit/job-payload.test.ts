import { describe, expect, it } from 'vitest';
import { JOB_PAYLOAD_VERSION, UnknownPayloadVersionError, readJobData } from '../../shared/jobs/payload.js';

describe('job payload versions', () => {
  it('reads a payload without a version (0.1.0) as the current shape', () => {
    const v1 = {
      model: 'resnet50',
      input: { image: 'x' },
      tenant: 't',
      deadline_at: 5,
      webhook: { url: 'https://a.example/h', events: ['completed' as const] },
    };
    expect(readJobData(v1)).toEqual({ ...v1, v: JOB_PAYLOAD_VERSION });
  });

  it('refuses a payload from a newer release instead of misreading it', () => {
    expect(() => readJobData({ v: JOB_PAYLOAD_VERSION + 1, model: 'm', input: {}, tenant: null })).toThrow(
      UnknownPayloadVersionError,
    );
  });
});
