import { describe, expect, it } from 'vitest';
import { jobView, stateFromHash } from '../../shared/job-view.js';

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

describe('jobView: a job whose deadline passed while it waited', () => {
  const facts = (processedOn?: number) => ({
    id: 'j1',
    data: { model: 'm', deadline_at: 1_000 },
    timestamp: 500,
    processedOn,
    attemptsMade: 0,
    stalledCounter: 0,
  });

  it('reads failed while queued and still failed once a worker picks it up, never running', () => {
    // Its deadline is long past: queued, it reads failed (the worker fails it on pick-up) ...
    expect(jobView(facts(), 'waiting')).toMatchObject({ status: 'failed', output: { error_code: 2002 } });
    // ... and a pick-up after the deadline cannot make it read running in between (chaos seed 777, I1).
    expect(jobView(facts(1_001), 'active')).toMatchObject({ status: 'failed', output: { error_code: 2002 } });
    // Picked up in time, it runs: the deadline passing while it runs is the run's to judge.
    expect(jobView(facts(999), 'active').status).toBe('running');
  });
});
