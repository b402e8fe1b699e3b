/**
 * Batch routes: submit (JSON, or a JSONL stream read line by line), read, results, cancel.
 * Mounted before the API's JSON body parser: a JSONL upload must reach us as a stream.
 */
import { checkPriorityCeiling } from '../priority-ceiling.js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { SpecError } from '../../shared/errors.js';
import type { IntakeOptions } from '../../shared/options/intake.js';
import { firstProblem } from '../../shared/validation.js';
import { WebhookTargetPolicy } from '../../shared/webhooks/target-policy.js';
import type { RawItem } from '../batch-service.js';
import { jsonlLines } from '../batch-upload.js';
import { BatchBody, BatchQuery, BatchResultLineSchema, BatchViewSchema, MAX_JSON_DEPTH } from '../schemas.js';
import { scanJsonStructure } from '../body-parse.js';
import { jsonBody, jsonBodyOptions } from '../json-body.js';
import { checkWebhookTarget } from '../webhook-option.js';
import { meterOf } from '../body-meter.js';
import type { ApiContext } from '../context.js';
import { jsonSchema } from '../openapi.js';
import type { Parameter, RouteDef } from '../route-table.js';

const JSONL_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/jsonlines'];

export function batchRoutes(ctx: ApiContext): RouteDef[] {
  const { batches, jobs, metrics } = ctx;
  const { intake, tenancy, webhooks } = ctx.options;
  const targets = new WebhookTargetPolicy(webhooks.allowPrivate);
  // Depth and value count checked on the raw bytes before parsing, as for every other body.
  const jsonBodyParser = jsonBody(jsonBodyOptions(ctx));

  const isJsonl = (req: Request) =>
    JSONL_TYPES.includes((req.get('content-type') ?? '').split(';')[0].trim().toLowerCase());

  const readBody = (req: Request, res: Response, next: NextFunction) => {
    // Refused up front, before a byte is staged.
    const length = Number(req.get('content-length') ?? NaN);
    const cap = isJsonl(req) ? intake.batchMaxBytes : Math.min(intake.batchMaxBytes, intake.bodyLimitBytes);
    if (length > cap)
      return next(
        new SpecError(
          'BODY_TOO_LARGE',
          `a batch upload is at most ${cap} bytes${isJsonl(req) ? '' : ' as JSON (send application/x-ndjson for more)'}`,
        ),
      );
    if (isJsonl(req)) return next();
    jsonBodyParser(req, res, next);
  };

  const submit = async (req: Request, res: Response) => {
    const model = String(req.params.model);
    jobs.model(model);
    const jsonl = isJsonl(req);
    const parsed = jsonl ? BatchQuery.safeParse(req.query) : BatchBody.safeParse(req.body ?? {});
    if (!parsed.success) throw new SpecError(jsonl ? 'INVALID_OPTION' : 'INVALID_INPUT', firstProblem(parsed.error));
    const options = parsed.data;
    // A batch's priority orders it among other batches in the model's bulk lane: held to the same ceiling as jobs.
    checkPriorityCeiling(tenancy, req, options.priority);
    if (options.webhook) checkWebhookTarget(webhooks, targets, options.webhook);
    const key = req.get('idempotency-key');
    if (key !== undefined && (key.length === 0 || key.length > 255))
      throw new SpecError('INVALID_OPTION', 'Idempotency-Key must be 1 to 255 characters');

    const hash = createHash('sha256');
    let items: AsyncIterable<RawItem>;
    if (jsonl) {
      items = parseLines(req, intake, hash);
    } else {
      const inputs = (req.body as { inputs: unknown[] }).inputs;
      if (inputs.length > intake.batchMaxItems)
        throw new SpecError('BODY_TOO_LARGE', `a batch holds at most ${intake.batchMaxItems} items`);
      hash.update(JSON.stringify(inputs));
      items = (async function* () {
        for (const value of inputs) yield { value };
      })();
    }
    const { view, replayed } = await batches.submit(model, items, () => hash.copy().digest('hex'), {
      tenant: req.tenant,
      priority: options.priority,
      timeoutS: options.timeout_s,
      ...(options.webhook ? { webhook: { url: options.webhook, events: ['batch.completed' as const] } } : {}),
      ...(key ? { idempotencyKey: key } : {}),
    });
    if (!replayed) {
      metrics.batchesSubmitted.inc({ model });
      metrics.batchItemsSubmitted.inc({ model }, view.counts.total);
    }
    res.location(view.urls.get);
    res.status(replayed ? 200 : 202).json(view);
  };

  const results = async (req: Request, res: Response) => {
    const order = req.query.order ?? 'completion';
    if (order !== 'completion' && order !== 'input')
      throw new SpecError('INVALID_OPTION', 'order must be "completion" or "input"');
    // The status is set by the first line written, or at the end when there is none.
    const startStream = () => {
      if (!res.headersSent) res.status(200).type('application/x-ndjson');
    };
    await batches.results(String(req.params.id), req.tenant, order === 'input', async (text) => {
      startStream();
      if (!res.write(text)) await once(res, 'drain');
    });
    startStream();
    res.end();
  };

  const batchView = { 'application/json': BatchViewSchema };
  return [
    {
      method: 'post',
      path: '/v1/models/:model/batches',
      operationId: 'submitBatch',
      summary: 'Submit a batch: many inputs, one result stream, one batch.completed webhook',
      description:
        'JSON `{"inputs": [...], priority, timeout_s, webhook}` (at most MODELHUB_MAX_BODY_BYTES), or a JSONL stream (`application/x-ndjson`: one spec input per line, ' +
        'options as query parameters), read as it arrives, up to MODELHUB_BATCH_MAX_BYTES and MODELHUB_BATCH_MAX_ITEMS. A line that is not valid JSON or not a valid input fails that item alone. ' +
        'A batch is queued whole or not at all: an upload cut short queues nothing. Every batch ranks below every interactive job.',
      parameters: [
        {
          name: 'Idempotency-Key',
          in: 'header',
          description: 'The same key and upload return the first batch (200); another upload with it is 422',
          schema: { type: 'string', maxLength: 255 },
        },
        ...queryParameters(),
      ],
      body: {
        'application/json': BatchBody,
        'application/x-ndjson': { type: 'string', description: 'One spec input (a JSON object) per line' },
      },
      bodyExtensions: { 'application/x-ndjson': { 'x-item-schema': { type: 'object' } } },
      replies: {
        '200': { description: 'Idempotent replay: the existing batch', content: batchView },
        '202': { description: 'Queued', content: batchView },
      },
      errors: [
        'MODEL_NOT_FOUND',
        'MODEL_UNAVAILABLE',
        'INVALID_OPTION',
        'CONFLICT',
        'IDEMPOTENCY_MISMATCH',
        'TENANT_QUOTA',
        'STORE_UNAVAILABLE',
      ],
      handlers: [readBody, submit],
    },
    {
      method: 'get',
      path: '/v1/batches/:id',
      operationId: 'getBatch',
      summary: 'Read a batch: status, counts, timestamps',
      replies: { '200': { description: 'Batch', content: batchView } },
      errors: ['JOB_NOT_FOUND', 'STORE_UNAVAILABLE'],
      handlers: [async (req, res) => void res.json(await batches.get(String(req.params.id), req.tenant))],
    },
    {
      method: 'get',
      path: '/v1/batches/:id/results',
      operationId: 'batchResults',
      summary: 'Result lines finished so far (JSONL), in completion order or ?order=input',
      parameters: [
        {
          name: 'order',
          in: 'query',
          description: 'completion (as items finished) or input (by index)',
          schema: z.enum(['completion', 'input']).default('completion'),
        },
      ],
      replies: {
        '200': {
          description:
            'A JSON Lines stream: one result object per line (x-item-schema), each line ended by a newline; empty when none has finished',
          content: { 'application/x-ndjson': { type: 'string' } },
          extensions: { 'application/x-ndjson': { 'x-item-schema': jsonSchema(BatchResultLineSchema, 'output') } },
        },
      },
      errors: ['INVALID_OPTION', 'JOB_NOT_FOUND', 'STORE_UNAVAILABLE'],
      handlers: [results],
    },
    {
      method: 'post',
      path: '/v1/batches/:id/cancel',
      operationId: 'cancelBatch',
      summary: 'Cancel the items not yet started (running ones finish)',
      replies: { '200': { description: 'Batch', content: batchView } },
      errors: ['JOB_NOT_FOUND', 'CONFLICT', 'STORE_UNAVAILABLE'],
      handlers: [async (req, res) => void res.json(await batches.cancel(String(req.params.id), req.tenant))],
    },
  ];
}

/** The batch options as query parameters (a JSONL upload's; a JSON body carries them as fields). */
function queryParameters(): Parameter[] {
  const schema = jsonSchema(BatchQuery, 'input') as { properties?: Record<string, { description?: string }> };
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    description: `${property.description ?? name} (JSONL uploads; a JSON body carries it as a field)`,
    schema: property,
  }));
}

/** JSONL lines → items: a line that is not JSON (or too long, or too deep) fails alone. */
async function* parseLines(
  req: Request,
  intake: IntakeOptions,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<RawItem> {
  const limits = {
    maxLineBytes: intake.batchMaxLineBytes,
    maxBytes: intake.batchMaxBytes,
    maxLines: intake.batchMaxItems,
  };
  const lines = jsonlLines(req, limits, hash, meterOf(req));
  for (;;) {
    let next: IteratorResult<Awaited<ReturnType<typeof lines.next>>['value']>;
    try {
      next = await lines.next();
    } catch (err) {
      if (err instanceof SpecError) throw err;
      // The client went away mid-upload: what was staged is deleted, nothing is queued.
      throw new SpecError('INVALID_INPUT', `the upload ended before it was complete (${(err as Error).message})`);
    }
    if (next.done) return;
    const line = next.value;
    if (line.tooLong) {
      yield {
        error: new SpecError(
          'BODY_TOO_LARGE',
          `the line is ${line.bytes} bytes; the limit is ${intake.batchMaxLineBytes}`,
        ),
      };
      continue;
    }
    const problem = scanJsonStructure(Buffer.from(line.text), MAX_JSON_DEPTH, intake.maxJsonValues);
    if (problem) {
      yield { error: new SpecError('INVALID_INPUT', `the line: ${problem}`) };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch (err) {
      yield { error: new SpecError('BAD_JSON', `the line is not valid JSON: ${(err as Error).message}`) };
      continue;
    }
    yield { value };
  }
}
