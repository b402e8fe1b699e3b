/**
 * Devices and execution providers: a worker is pinned to one device, `cpu` or `cuda:N`.
 * CUDA runs through onnxruntime's CUDA execution provider, whose libraries are installed only
 * when onnxruntime-node is installed with ONNXRUNTIME_NODE_INSTALL=cuda12 (GPU images do this).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { InferenceSession } from 'onnxruntime-node';
import type { SessionTuning } from '../../shared/options/worker.js';

const require = createRequire(import.meta.url);

export type Device = { kind: 'cpu' } | { kind: 'cuda'; index: number };

export class DeviceError extends Error {
  override name = 'DeviceError';
}

export function parseDevice(text: string): Device {
  const t = text.trim().toLowerCase();
  if (t === 'cpu') return { kind: 'cpu' };
  const m = /^cuda(?::(\d+))?$/.exec(t);
  if (m) return { kind: 'cuda', index: m[1] ? Number(m[1]) : 0 };
  throw new DeviceError(`unknown device "${text}" (expected cpu or cuda:N)`);
}

/**
 * With CUDA_VISIBLE_DEVICES set, CUDA renumbers the visible GPUs from 0: `cuda:N` means the
 * N-th visible one. An index past what is visible is refused here, with the variable's value.
 */
export function checkVisible(device: Device, visible = process.env.CUDA_VISIBLE_DEVICES): void {
  if (device.kind !== 'cuda' || visible === undefined) return;
  const ids = visible
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const usable = ids.findIndex((s) => s.startsWith('-'));
  const count = usable === -1 ? ids.length : usable;
  if (device.index >= count) {
    throw new DeviceError(
      `cuda:${device.index} is not visible: CUDA_VISIBLE_DEVICES="${visible}" exposes ${count} GPU(s), numbered from 0`,
    );
  }
}

export function deviceName(d: Device): string {
  return d.kind === 'cpu' ? 'cpu' : `cuda:${d.index}`;
}

/** Folder holding onnxruntime-node's native binding and, when installed, the CUDA provider. */
function ortBinDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const napi = fs.readdirSync(path.join(pkg, 'bin')).find((d) => d.startsWith('napi-v')) ?? 'napi-v6';
  return path.join(pkg, 'bin', napi, process.platform, process.arch);
}

export function cudaProviderInstalled(binDir = ortBinDir()): boolean {
  return fs.existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'));
}

export type { SessionTuning };

/**
 * The worker's session tuning for one model: the operator's MODELHUB_INTRA_OP_THREADS (non-zero)
 * wins, then the model manifest's `session.intra_op_threads`, then onnxruntime's all cores (0).
 */
export function modelSessionTuning(tuning: SessionTuning, manifestIntraOpThreads: number | undefined): SessionTuning {
  return { ...tuning, intraOpThreads: tuning.intraOpThreads || manifestIntraOpThreads || 0 };
}

/**
 * Session options for a device. Throws DeviceError when CUDA is asked for but its provider is
 * not installed; onnxruntime would otherwise fail later with a less helpful message.
 */
export function sessionOptionsFor(
  device: Device,
  tuning: SessionTuning = {},
  hasCuda: () => boolean = cudaProviderInstalled,
): InferenceSession.SessionOptions {
  const common: InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: tuning.intraOpThreads || (device.kind === 'cpu' ? Math.max(1, os.availableParallelism()) : 1),
    interOpNumThreads: tuning.interOpThreads ?? 1,
  };
  if (device.kind === 'cpu') {
    const spin = tuning.spinning ? '1' : '0';
    return {
      ...common,
      executionProviders: ['cpu'],
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
    };
  }
  checkVisible(device);
  if (!hasCuda()) {
    throw new DeviceError(
      `device ${deviceName(device)} asked for, but onnxruntime's CUDA execution provider is not installed ` +
        '(reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with CUDA 12 and cuDNN 9)',
    );
  }
  const cuda: InferenceSession.ExecutionProviderConfig = {
    name: 'cuda',
    deviceId: device.index,
    ...(tuning.cudaMemLimit ? { gpuMemLimit: tuning.cudaMemLimit } : {}),
    arenaExtendStrategy: 'kSameAsRequested',
  } as InferenceSession.ExecutionProviderConfig;
  // No silent CPU fallback: a worker pinned to a GPU that cannot use it must fail loudly.
  return { ...common, executionProviders: [cuda] };
}
