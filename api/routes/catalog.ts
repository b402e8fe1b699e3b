/** Catalog routes: the models, their documentation and their sample inputs. */
import fs from 'node:fs';
import path from 'node:path';
import type { Request, Response } from 'express';
import { SpecError } from '../../shared/errors.js';
import { ALLOWED_IMAGE_FORMATS } from '../../shared/image-formats.js';
import { labelCount, labelOf, type ModelEntry } from '../../shared/manifest.js';
import { TASKS, type TaskName } from '../../shared/tasks.js';
import { listLiveWorkers, type WorkerInfo } from '../../shared/worker-registry.js';
import { provenanceOf } from '../../shared/weights-provenance.js';
import type { ApiContext } from '../context.js';
import { inputRef } from '../openapi.js';
import type { RouteDef } from '../route-table.js';
import { CatalogSchema, ModelDetailSchema } from '../schemas.js';

export type ModelStatus = 'ready' | 'no_workers' | 'unavailable';

/** What the live workers serving a model loaded: each distinct file (by sha256) and how many workers hold it. */
function loadedWeights(name: string, serving: WorkerInfo[]) {
  const files = new Map<
    string,
    { file: string; sha256: string; kind: string; verification?: string; workers: number }
  >();
  for (const w of serving) {
    const loaded = w.weights?.[name];
    if (!loaded) continue;
    const seen = files.get(loaded.sha256);
    if (seen) seen.workers += 1;
    else files.set(loaded.sha256, { ...loaded, workers: 1 });
  }
  return [...files.values()];
}

/** What turns a test or missing model into a real one: the fetch command, or the manifest's own instructions. */
export function makeRealHint(entry: ModelEntry): string {
  const m = entry.manifest;
  if (m.model.files?.some((f) => f.url)) return `npm run models:fetch -- ${m.name}`;
  return m.reference ?? `put the model file in ${entry.dir}`;
}

async function summary(entry: ModelEntry, workers: WorkerInfo[], queue: { waiting: number; active: number } | null) {
  const m = entry.manifest;
  const provenance = await provenanceOf(entry).catch(() => null);
  const serving = workers.filter((w) => w.models.includes(m.name));
  const status: ModelStatus = !entry.modelPath ? 'unavailable' : serving.length > 0 ? 'ready' : 'no_workers';
  const loaded = loadedWeights(m.name, serving);
  // Live workers may batch less than the manifest says (a model file with a fixed batch dimension).
  const workerBatch = serving
    .map((w) => w.batching[m.name]?.max_batch_size)
    .filter((n): n is number => typeof n === 'number');
  return {
    name: m.name,
    task: m.task,
    modality: TASKS[m.task].modality,
    // One allow-list today, checked on every image in the API and the worker.
    image_formats: TASKS[m.task].modality === 'image' ? [...ALLOWED_IMAGE_FORMATS] : [],
    description:
      entry.weights === 'test'
        ? `${m.description} [TEST MODEL: generated stand-in with the reference export's signature, not the real weights]`
        : m.description,
    status,
    weights: entry.weights ?? 'missing',
    /** The file this hub resolved for the model: its sha256 and whether the manifest records that digest. */
    ...(provenance
      ? { weights_file: provenance.file, weights_sha256: provenance.sha256, verification: provenance.verification }
      : {}),
    ...(entry.weights === 'real' ? {} : { make_real: makeRealHint(entry) }),
    ...(entry.weightsFile?.license ? { license: entry.weightsFile.license } : {}),
    workers: serving.length,
    max_batch_size: workerBatch.length > 0 ? Math.min(...workerBatch) : m.batching.max_batch_size,
    /** The weights files the live workers loaded, by sha256: more than one is a mixed fleet. */
    loaded,
    mixed_fleet: loaded.length > 1,
    queue,
  };
}

/** Class names by id (null where an id has no name), for clients that draw legends. */
function labelNames(labels: ModelEntry['labels']): (string | null)[] | null {
  if (!labels) return null;
  if (Array.isArray(labels)) return labels;
  const ids = Object.keys(labels).map(Number);
  return Array.from({ length: Math.max(...ids) + 1 }, (_, id) => (id in labels ? labelOf(labels, id) : null));
}

export function catalogRoutes(ctx: ApiContext): RouteDef[] {
  const { jobs, models, redis, options } = ctx;

  const liveWorkers = () => listLiveWorkers(redis, options.prefix).catch(() => [] as WorkerInfo[]);
  const queueCounts = async (name: string) => {
    try {
      const c = await jobs.queues.get(name)!.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      // BullMQ answers every state asked for (0 when empty).
      return { waiting: c.waiting + c.prioritized + c.delayed, active: c.active };
    } catch {
      return null;
    }
  };

  const listModels = async (_req: Request, res: Response) => {
    const workers = await liveWorkers();
    // Real models first, then test stand-ins, then unavailable ones (each group by name): the
    // catalog's first rows are models whose answers mean something.
    const rank = (e: ModelEntry) => (e.weights === 'real' ? 0 : e.weights === 'test' ? 1 : 2);
    const entries = [...models.values()].sort(
      (a, b) => rank(a) - rank(b) || a.manifest.name.localeCompare(b.manifest.name),
    );
    const list = await Promise.all(entries.map(async (e) => summary(e, workers, await queueCounts(e.manifest.name))));
    res.json({ models: list });
  };

  const detail = async (req: Request, res: Response) => {
    const entry = jobs.model(String(req.params.model));
    const m = entry.manifest;
    const task = TASKS[m.task];
    const workers = await liveWorkers();
    res.json({
      ...(await summary(entry, workers, await queueCounts(m.name))),
      reference: m.reference,
      input: { schema: task.input.toJSONSchema({ io: 'input', unrepresentable: 'any' }) },
      output: { fields: task.outputFields },
      tensors: { inputs: m.inputs, outputs: m.outputs },
      preprocess: m.preprocess,
      postprocess: m.postprocess,
      batching: m.batching,
      num_labels: labelCount(entry.labels),
      labels: labelNames(entry.labels),
      example: `/v1/models/${m.name}/example`,
    });
  };

  const example = async (req: Request, res: Response) => {
    const entry = jobs.model(String(req.params.model));
    const file = entry.manifest.example;
    if (!file) throw new SpecError('EXAMPLE_NOT_FOUND', `model "${entry.manifest.name}" has no example input`);
    const full = path.resolve(entry.dir, file);
    if (file.endsWith('.json')) {
      res.json(JSON.parse(await fs.promises.readFile(full, 'utf8')));
    } else {
      res.json({ image: (await fs.promises.readFile(full)).toString('base64') });
    }
  };

  return [
    {
      method: 'get',
      path: '/v1/models',
      operationId: 'models',
      summary: 'List models',
      replies: { '200': { description: 'Catalog', content: { 'application/json': CatalogSchema } } },
      handlers: [listModels],
    },
    {
      method: 'get',
      path: '/v1/models/:model',
      operationId: 'model',
      summary: 'One model: inputs, outputs, labels, batching',
      replies: { '200': { description: 'Model', content: { 'application/json': ModelDetailSchema } } },
      errors: ['MODEL_NOT_FOUND'],
      handlers: [detail],
    },
    {
      method: 'get',
      path: '/v1/models/:model/example',
      operationId: 'example',
      summary: 'A ready sample input',
      replies: {
        '200': {
          description: 'Spec input',
          content: { 'application/json': { anyOf: Object.keys(TASKS).map((t) => inputRef(t as TaskName)) } },
        },
      },
      errors: ['MODEL_NOT_FOUND', 'EXAMPLE_NOT_FOUND'],
      perModel: (task) => ({
        replies: { '200': { description: 'Spec input', content: { 'application/json': inputRef(task) } } },
      }),
      handlers: [example],
    },
  ];
}
