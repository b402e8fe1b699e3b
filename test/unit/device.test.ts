import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DeviceError,
  cudaProviderInstalled,
  modelSessionTuning,
  parseDevice,
  sessionOptionsFor,
} from '../../worker/backend/device.js';
import { ManifestSchema } from '../../shared/manifest.js';

describe('devices and execution providers', () => {
  it('parses cpu and cuda:N', () => {
    expect(parseDevice('cpu')).toEqual({ kind: 'cpu' });
    expect(parseDevice('cuda:1')).toEqual({ kind: 'cuda', index: 1 });
    expect(parseDevice('CUDA')).toEqual({ kind: 'cuda', index: 0 });
    expect(() => parseDevice('tpu:0')).toThrow(DeviceError);
  });

  it('pins cpu workers to the CPU provider with the requested threads', () => {
    const opts = sessionOptionsFor({ kind: 'cpu' }, { intraOpThreads: 3 });
    // Spinning is off unless asked for: it burns the CPU that preprocessing needs.
    expect(opts.extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
    expect(sessionOptionsFor({ kind: 'cpu' }, { spinning: true }).extra).toEqual({
      session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } },
    });
    expect(opts.executionProviders).toEqual(['cpu']);
    expect(opts.intraOpNumThreads).toBe(3);
  });

  it("takes a model's intra-op threads from its manifest unless the operator set them", () => {
    const cores = Math.max(1, os.availableParallelism());
    const threads = (tuning: { intraOpThreads?: number }, manifest?: number) =>
      sessionOptionsFor({ kind: 'cpu' }, modelSessionTuning(tuning, manifest)).intraOpNumThreads;
    expect(threads({ intraOpThreads: 0 }, 1)).toBe(1);
    expect(threads({ intraOpThreads: 4 }, 1)).toBe(4);
    expect(threads({ intraOpThreads: 0 }, undefined)).toBe(cores);
    // The shipped text-direction classifier runs on one thread (measured faster, at half the CPU).
    const direction = ManifestSchema.parse(JSON.parse(fs.readFileSync('models/text-direction/manifest.json', 'utf8')));
    expect(direction.session.intra_op_threads).toBe(1);
  });

  it('selects the CUDA provider with the device id, and never falls back to CPU', () => {
    const opts = sessionOptionsFor({ kind: 'cuda', index: 2 }, { cudaMemLimit: 1 << 30 }, () => true);
    expect(opts.executionProviders).toEqual([
      expect.objectContaining({ name: 'cuda', deviceId: 2, gpuMemLimit: 1 << 30 }),
    ]);
  });

  it('fails clearly when CUDA is asked for but its provider is not installed', () => {
    expect(() => sessionOptionsFor({ kind: 'cuda', index: 0 }, {}, () => false)).toThrow(
      /CUDA execution provider is not installed.*ONNXRUNTIME_NODE_INSTALL=cuda12/,
    );
  });

  it('detects the CUDA provider by its library beside onnxruntime, and finds none in this CPU-only install', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-ort-'));
    try {
      expect(cudaProviderInstalled(dir)).toBe(false);
      fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), '');
      expect(cudaProviderInstalled(dir)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // The repository's .npmrc skips the CUDA download (GPU images install it: ONNXRUNTIME_NODE_INSTALL=cuda12).
    expect(cudaProviderInstalled()).toBe(process.env.ONNXRUNTIME_NODE_INSTALL === 'cuda12');
  });
});
