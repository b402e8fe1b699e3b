import { describe, expect, it } from 'vitest';
import { stateFromHash } from '../../shared/job-view.js';

const job = (o: Partial<Parameters<typeof stateFromHash>[0]>) => ({
  finishedOn: undefined,
  processedOn: undefined,
  returnvalue: null,
  attemptsMade: 0,
  stalledCounter: 0,
  ...o,
});

describe('stateFromHash (a job view from one read of its hash)', () => {
  it('reads finished, queued and first-attempt running jobs from the hash alone', () => {
    expect(
      stateFromHash(
        job({
          processedOn: 1,
          finishedOn: 2,
          returnvalue: {
            output: {},
            metrics: { inference_ms: 1, preprocess_ms: 1, batch_size: 1, device: 'cpu', worker: 'w' },
          },
        }),
      ),
    ).toBe('completed');
    expect(stateFromHash(job({ processedOn: 1, finishedOn: 2, attemptsMade: 3 }))).toBe('failed');
    expect(stateFromHash(job({}))).toBe('waiting');
    expect(stateFromHash(job({ processedOn: 1 }))).toBe('active');
  });

  it('asks Redis for the state of a started job that may be waiting again (retried or recovered)', () => {
    expect(stateFromHash(job({ processedOn: 1, attemptsMade: 1 }))).toBeNull();
    expect(stateFromHash(job({ processedOn: 1, stalledCounter: 1 }))).toBeNull();
  });
});
