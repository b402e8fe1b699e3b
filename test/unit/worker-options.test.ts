/** The resolvers beyond their documented defaults (test/unit/options-docs.test.ts): derived values, variables by either name, nesting. */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { batcherOptions } from '../../shared/options/batcher.js';
import { fleetOptions, taskOptions, workerOptions, workerMetricsPort } from '../../shared/options/worker.js';

const halfTheCores = Math.max(1, Math.floor(os.availableParallelism() / 2));

describe('worker, task, batcher and fleet options, resolved once from the configuration', () => {
  it('have the defaults their types document', () => {
    const config = loadConfig({});
    expect(taskOptions(config)).toMatchObject({
      maxImageBytes: 20 * 1024 * 1024,
      maxImagePixels: 40_000_000,
      decodeTimeoutS: 10,
      maxResultBytes: 32 * 1024 * 1024,
      padToBucket: true,
      offloopPostprocessPixels: 500_000,
      offloopThreads: 0,
    });
    expect(batcherOptions(config)).toMatchObject({
      bulkItemsInFlight: 0,
      heavyItemsInFlight: halfTheCores,
      heavyImagePixels: 4_000_000,
    });
    const worker = workerOptions(config);
    expect({
      ...worker,
      repository: undefined,
      tasks: undefined,
      batcher: undefined,
      webhooks: undefined,
    }).toMatchObject({
      prefix: 'modelhub',
      redis: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: undefined },
      repository: undefined,
      logging: { level: 'info', format: 'auto' },
      device: 'cpu',
      models: 'all',
      metricsPort: 9464,
      metricsHost: '127.0.0.1',
      lockMs: 30_000,
      stalledIntervalMs: 15_000,
      maxStalled: 2,
      heartbeatMs: 5_000,
      shutdownTimeoutMs: 30_000,
      bulkChunksAtOnce: 2,
      sharpThreads: 1,
      session: { intraOpThreads: 0, interOpThreads: 1, spinning: false, cudaMemLimit: 0 },
      tasks: undefined,
      batcher: undefined,
      retention: { JOB_RETENTION_S: 86_400, JOB_RETENTION_COUNT: 10_000, JOB_RETENTION_BYTES: 1024 ** 3 },
      claimTtlS: 90_000,
      batchLiveTtlS: 86_400 + 7 * 24 * 3600,
      webhooks: undefined,
    });
    expect(worker.tasks).toEqual(taskOptions(config));
    expect(worker.batcher).toEqual(batcherOptions(config));
    expect(fleetOptions(config)).toMatchObject({
      devices: 'cpu',
      models: 'all',
      restartBaseMs: undefined,
      shutdownTimeoutMs: 30_000,
      metricsBasePort: 9464,
      logging: { level: 'info', format: 'auto' },
    });
  });

  it('takes each variable, by its MODELHUB_ name or its deprecated one', () => {
    const config = loadConfig({
      MODELHUB_MAX_IMAGE_PIXELS: '1000',
      MODELHUB_IMAGE_DECODE_TIMEOUT_S: '3',
      MAX_RESULT_BYTES: '2048',
      MODELHUB_PAD_TO_BUCKET: 'off',
      OFFLOOP_POSTPROCESS_PIXELS: '7',
      MODELHUB_BATCH_ITEMS_IN_FLIGHT: '5',
      MODELHUB_HEAVY_ITEMS_IN_FLIGHT: '3',
      HEAVY_IMAGE_PIXELS: '0',
      MODELHUB_LOCK_MS: '2000',
      MODELHUB_ORT_SPINNING: 'on',
      MODELHUB_WORKER_INDEX: '2',
      MODELHUB_DEVICE: 'cuda:1',
      MODELHUB_DEVICES: 'cpu x2',
      MODELHUB_FLEET_RESTART_BASE_MS: '50',
    });
    const worker = workerOptions(config);
    expect(worker.tasks).toMatchObject({
      maxImagePixels: 1000,
      decodeTimeoutS: 3,
      maxResultBytes: 2048,
      padToBucket: false,
      offloopPostprocessPixels: 7,
    });
    expect(worker.batcher).toEqual({ bulkItemsInFlight: 5, heavyItemsInFlight: 3, heavyImagePixels: 0 });
    expect(worker).toMatchObject({ lockMs: 2000, device: 'cuda:1', metricsPort: 9466 });
    expect(worker.session.spinning).toBe(true);
    expect(fleetOptions(config)).toMatchObject({ devices: 'cpu x2', restartBaseMs: 50, metricsBasePort: 9464 });
    expect(workerMetricsPort(loadConfig({ MODELHUB_METRICS_PORT: '9000', MODELHUB_WORKER_INDEX: '4' }))).toBe(9000);
    expect(fleetOptions(loadConfig({ MODELHUB_METRICS_PORT: '9000' })).metricsBasePort).toBe(9000);
  });
});
