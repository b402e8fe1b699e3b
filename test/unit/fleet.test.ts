import { describe, expect, it } from 'vitest';
import { checkVisible } from '../../worker/backend/device.js';
import { DEFAULT_RESTART, parseDeviceList, restartDelay } from '../../worker/fleet.js';

describe('fleet device lists', () => {
  it('expands "cuda:0,cuda:1", "cpu x2" and mixed lists into one device per worker', () => {
    expect(parseDeviceList('cuda:0,cuda:1')).toEqual(['cuda:0', 'cuda:1']);
    expect(parseDeviceList('cpu x2')).toEqual(['cpu', 'cpu']);
    expect(parseDeviceList('cpu, cuda:0 x2')).toEqual(['cpu', 'cuda:0', 'cuda:0']);
    expect(() => parseDeviceList('tpu x2')).toThrow(/unknown device/);
    expect(() => parseDeviceList('')).toThrow(/no devices/);
  });

  it('backs off restarts exponentially up to a cap', () => {
    expect([1, 2, 3, 4, 10].map((n) => restartDelay(DEFAULT_RESTART, n))).toEqual([1000, 2000, 4000, 8000, 30_000]);
  });
});

describe('CUDA_VISIBLE_DEVICES', () => {
  it('numbers visible GPUs from 0 and refuses an index past them', () => {
    expect(() => checkVisible({ kind: 'cuda', index: 1 }, '2,3')).not.toThrow();
    expect(() => checkVisible({ kind: 'cuda', index: 2 }, '2,3')).toThrow(/CUDA_VISIBLE_DEVICES="2,3" exposes 2 GPU/);
    expect(() => checkVisible({ kind: 'cuda', index: 0 }, '')).toThrow(/exposes 0 GPU/);
    expect(() => checkVisible({ kind: 'cuda', index: 0 }, '-1')).toThrow(/exposes 0 GPU/);
    expect(() => checkVisible({ kind: 'cuda', index: 5 }, undefined)).not.toThrow();
    expect(() => checkVisible({ kind: 'cpu' }, '')).not.toThrow();
  });
});

describe('stopping a worker', () => {
  it('SIGKILLs a worker that outlives its shutdown timeout (stuck, ignoring SIGTERM)', async () => {
    const { spawn } = await import('node:child_process');
    const { stopWorker } = await import('../../worker/fleet.js');
    const stuck = spawn(
      process.execPath,
      ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => stuck.stdout!.once('data', r));
    await stopWorker(stuck, 'SIGTERM', 300);
    expect(stuck.signalCode).toBe('SIGKILL');
  });

  it('leaves a worker that drains in time to exit by itself', async () => {
    const { spawn } = await import('node:child_process');
    const { stopWorker } = await import('../../worker/fleet.js');
    const polite = spawn(
      process.execPath,
      ['-e', "process.on('SIGTERM', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000)"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => polite.stdout!.once('data', r));
    await stopWorker(polite, 'SIGTERM', 10_000);
    expect(polite.exitCode).toBe(0);
    expect(polite.signalCode).toBeNull();
  });
});
