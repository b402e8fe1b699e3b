/**
 * Loads the sessions of the models a worker serves (one per distinct model file) and checks each
 * against its manifest; says in the log what was loaded and what was not.
 */
import type { Logger } from '../shared/logger.js';
import { loadModelRepository } from '../shared/manifest.js';
import type { WorkerOptions } from '../shared/options/worker.js';
import { deviceName, type Device } from './backend/device.js';
import { SessionPool } from './backend/session-pool.js';
import type { createWorkerMetrics } from './metrics.js';
import { ModelRunner } from './model-runner.js';

/** `models`: "all" (what is installed) or a comma list (each must load). */
export async function loadRunners(
  options: Pick<WorkerOptions, 'repository' | 'session' | 'tasks'>,
  device: Device,
  models: string,
  log: Logger,
  metrics: ReturnType<typeof createWorkerMetrics>,
  onSessionDeath: (err: Error) => void,
): Promise<ModelRunner[]> {
  const repository = loadModelRepository(options.repository);
  const wanted = models === 'all' ? [...repository.keys()] : models.split(',').map((m) => m.trim());
  for (const name of wanted) {
    if (!repository.has(name)) throw new Error(`unknown model "${name}" (known: ${[...repository.keys()].join(', ')})`);
  }
  const runners: ModelRunner[] = [];
  // One session per distinct model file: the three DBNet text models load one, not three.
  const sessions = new SessionPool(onSessionDeath);
  for (const name of wanted) {
    const entry = repository.get(name)!;
    if (!entry.modelPath) {
      // "all" serves what is installed; a model asked for by name must load.
      if (models === 'all') {
        log.warn({ model: name, problem: entry.problem }, 'model unavailable; not served');
        continue;
      }
      throw new Error(`model "${name}" is unavailable: ${entry.problem}`);
    }
    const runner = await ModelRunner.load(entry, device, options.tasks, metrics, {
      tuning: options.session,
      onSessionDeath,
      sessions,
    });
    runners.push(runner);
    const { batchLimit, weights } = runner;
    log.info(
      {
        model: name,
        device: deviceName(device),
        weights: weights.kind,
        verification: weights.verification,
        file: entry.modelPath,
        sha256: weights.sha256,
        max_batch_size: runner.batching.max_batch_size,
      },
      'model loaded',
    );
    if (batchLimit) {
      log.warn(
        {
          model: name,
          tensor: batchLimit.tensor,
          max_batch_size: batchLimit.size,
          manifest_max_batch_size: entry.manifest.batching.max_batch_size,
        },
        `the model file fixes the batch dimension of "${batchLimit.tensor}" at ${batchLimit.size}: batches capped at ${batchLimit.size}`,
      );
    }
    if (weights.expected_sha256) {
      log.warn(
        { model: name, file: entry.modelPath, sha256: weights.sha256, expected_sha256: weights.expected_sha256 },
        'the model file differs from the checksum its manifest gives',
      );
    }
  }
  if (runners.length === 0) throw new Error('no model could be loaded; nothing to serve');
  return runners;
}
