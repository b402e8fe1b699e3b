/** Which failures the workers retry (isRetriable): the model's and our own, never the input's. */
import { describe, expect, it } from 'vitest';
import { ErrorCodes, SpecError, isRetriable, type ErrorKind } from '../../shared/errors.js';

describe('isRetriable', () => {
  it('retries the model failing and internal faults, and anything thrown that is not a spec error', () => {
    expect(isRetriable(new SpecError('INFERENCE_FAILED', 'session.run threw'))).toBe(true);
    expect(isRetriable(new SpecError('INTERNAL', 'staged inputs gone'))).toBe(true);
    expect(isRetriable(new Error('ECONNRESET'))).toBe(true);
    expect(isRetriable('thrown string')).toBe(true);
  });

  it('never retries any other kind: the same input fails the same way', () => {
    const final = (Object.keys(ErrorCodes) as ErrorKind[]).filter((k) => k !== 'INFERENCE_FAILED' && k !== 'INTERNAL');
    expect(final).toEqual(
      expect.arrayContaining(['INVALID_IMAGE', 'DEADLINE_EXCEEDED', 'CANCELED', 'OUTPUT_TOO_LARGE']),
    );
    for (const kind of final) expect(isRetriable(new SpecError(kind, 'x')), kind).toBe(false);
  });
});
