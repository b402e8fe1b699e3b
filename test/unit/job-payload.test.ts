import { describe, expect, it } from 'vitest';
import { JOB_PAYLOAD_VERSION, UnknownPayloadVersionError, readJobData } from '../../shared/jobs/payload.js';
import { itemsToClaim, type EntryData } from '../../shared/predict/entry.js';

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

describe('predict entry claims', () => {
  const entry = (marks: boolean, counted: boolean[]): EntryData => ({
    v: 2,
    kind: 'entry',
    model: 'm',
    tenant: null,
    input: {},
    ...(marks ? { marks_waiting: true as const } : {}),
    items: counted.map((c, k) => ({
      id: `e.p${k}`,
      tenant: c ? 't' : null,
      input: {},
      ...(c ? { counted_waiting: true as const } : {}),
    })),
  });
  const ids = (data: EntryData) => itemsToClaim(data).map((it) => it.id);

  it('claims only the items an entry marks as counted as waiting, none when it marks none', () => {
    expect(ids(entry(true, [true, false, true]))).toEqual(['e.p0', 'e.p2']);
    expect(ids(entry(true, [false, false]))).toEqual([]);
  });

  it("claims every item of an entry without marks (an earlier API's)", () => {
    expect(ids(entry(false, [true, false, true]))).toEqual(['e.p0', 'e.p1', 'e.p2']);
    expect(ids(entry(false, [false]))).toEqual(['e.p0']);
  });
});
