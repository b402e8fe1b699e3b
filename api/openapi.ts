/**
 * OpenAPI 3.1 document of the whole API, generated from the zod schemas that validate requests.
 * Each operationId is the name of the SDK method that calls it (clients/typescript), so code
 * generators and the SDK agree; a test lints this document with Redocly's recommended rules.
 */
import { z } from 'zod';
import { TASKS } from '../shared/tasks.js';
import {
  AcceptedSchema,
  BatchBody,
  BatchQuery,
  BatchResultLineSchema,
  BatchViewSchema,
  CatalogSchema,
  JobViewSchema,
  SpecErrorSchema,
  SubmitBody,
  UsageSchema,
  WorkersSchema,
} from './schemas.js';

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => ({
  'application/json': { schema: z.toJSONSchema(schema, { io, unrepresentable: 'any' }) },
});
const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/SpecError' } } },
});
const modelParam = {
  name: 'model',
  in: 'path',
  required: true,
  description: 'Model name, as listed by GET /v1/models',
  schema: { type: 'string' },
};
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: "Job id (a predict answer's request_id is one too)",
  schema: { type: 'string' },
};
const batchIdParam = { name: 'id', in: 'path', required: true, description: 'Batch id', schema: { type: 'string' } };
const preferParam = {
  name: 'Prefer',
  in: 'header',
  description: 'wait=N: hold the answer up to N seconds (capped by PREDICT_WAIT_S) until the job finishes',
  schema: { type: 'string', example: 'wait=10' },
};

const errors = {
  '400': error(
    'Bad input: invalid JSON, a missing, unknown or wrong-typed field, an undecodable image (error_code 1001-1006)',
  ),
  '401': error('Missing or invalid API key (1101); only when MODELHUB_API_KEYS is set'),
  '403': error("This key may not do that (1102), e.g. read another tenant's usage without an admin key"),
  '404': error('Unknown model (1201), job (1202) or route (1203)'),
  '409': error('Conflict: the job is running or finished (1301), or was canceled (2003)'),
  '413': error('Body (1005) or image (1004) too large'),
  '415': error(
    'Image format not accepted: JPEG, PNG, WebP, GIF, TIFF only (1007); or the body is compressed or not UTF-8 (1010)',
  ),
  '422': error(
    'Idempotency-Key reused with another request (1302), image decode too slow (1008), or the result would pass the result limit (1009: use rle/png)',
  ),
  '429': error(
    "The model's queue is full (1401), the tenant's waiting quota (1402) or rate limit (1403) is reached; see Retry-After",
  ),
  '500': error('Inference failed (2001) or internal error (2999)'),
  '503': error(
    'The job store is unavailable (1501), the API is busy parsing other bodies (1503), or the model is not installed (1204); see Retry-After',
  ),
  '504': error('Wait limit (1502) or the job deadline (2002) passed; the job continues in the former case'),
};
const pick = <K extends keyof typeof errors>(...codes: K[]) => Object.fromEntries(codes.map((c) => [c, errors[c]]));

export function buildOpenApi(version: string): Record<string, unknown> {
  const anyInput = {
    oneOf: Object.entries(TASKS).map(([task, t]) => ({
      title: task,
      ...z.toJSONSchema(t.input, { io: 'input', unrepresentable: 'any' }),
    })),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'ModelHub API',
      version,
      description: 'Queue-driven model serving: submit jobs, poll or wait, or predict synchronously.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'The hub that serves this document' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Only when MODELHUB_API_KEYS is set' },
      },
      schemas: { SpecError: z.toJSONSchema(SpecErrorSchema) },
    },
    security: [{ bearer: [] }, {}],
    paths: {
      '/v1/models': {
        get: {
          operationId: 'models',
          summary: 'List models',
          responses: { '200': { description: 'Catalog', content: json(CatalogSchema) }, ...pick('401', '503') },
        },
      },
      '/v1/models/{model}': {
        get: {
          operationId: 'model',
          summary: 'One model: inputs, outputs, labels, batching',
          parameters: [modelParam],
          responses: { '200': { description: 'Model' }, ...pick('401', '404', '503') },
        },
      },
      '/v1/models/{model}/example': {
        get: {
          operationId: 'example',
          summary: 'A ready sample input',
          parameters: [modelParam],
          responses: {
            '200': { description: 'Spec input', content: { 'application/json': { schema: anyInput } } },
            ...pick('401', '404'),
          },
        },
      },
      '/v1/models/{model}/jobs': {
        post: {
          operationId: 'submit',
          summary: 'Submit a job',
          parameters: [
            modelParam,
            {
              name: 'Idempotency-Key',
              in: 'header',
              description: 'The same key and request return the same job',
              schema: { type: 'string', maxLength: 255 },
            },
            preferParam,
          ],
          requestBody: { required: true, content: json(SubmitBody, 'input') },
          responses: {
            '200': {
              description: 'Finished within Prefer: wait, or an idempotent replay',
              content: json(JobViewSchema),
            },
            '202': { description: 'Queued', content: json(AcceptedSchema) },
            ...pick('400', '401', '404', '413', '415', '422', '429', '503'),
          },
        },
      },
      '/v1/models/{model}/predict': {
        post: {
          operationId: 'predict',
          summary: 'Synchronous predict: the spec input in, the spec output out',
          parameters: [modelParam],
          requestBody: { required: true, content: { 'application/json': { schema: anyInput } } },
          responses: {
            '200': { description: 'Spec output' },
            ...pick('400', '401', '404', '409', '413', '415', '429', '500', '503', '504'),
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'get',
          summary: 'Read a job',
          parameters: [idParam, preferParam],
          responses: { '200': { description: 'Job', content: json(JobViewSchema) }, ...pick('401', '404', '503') },
        },
        delete: {
          operationId: 'delete',
          summary: "Delete a finished job's input and output",
          parameters: [idParam],
          responses: { '200': { description: 'Deleted: { id, deleted: true }' }, ...pick('401', '404', '409', '503') },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          operationId: 'cancel',
          summary: 'Cancel a queued job',
          parameters: [idParam],
          responses: {
            '200': { description: 'Canceled', content: json(JobViewSchema) },
            ...pick('401', '404', '409', '503'),
          },
        },
      },
      '/v1/models/{model}/batches': {
        post: {
          operationId: 'submitBatch',
          summary: 'Submit a batch: many inputs, one result stream, one batch.completed webhook',
          description:
            'JSON `{"inputs": [...], priority, timeout_s, webhook}` (at most MAX_BODY_BYTES), or a JSONL stream (`application/x-ndjson`: one spec input per line, ' +
            'options as query parameters), read as it arrives, up to BATCH_MAX_BYTES and BATCH_MAX_ITEMS. A line that is not valid JSON or not a valid input fails that item alone. ' +
            'A batch is queued whole or not at all: an upload cut short queues nothing. Every batch ranks below every interactive job.',
          parameters: [
            modelParam,
            {
              name: 'Idempotency-Key',
              in: 'header',
              description: 'The same key and upload return the first batch (200); another upload with it is 422',
              schema: { type: 'string', maxLength: 255 },
            },
            ...Object.entries(z.toJSONSchema(BatchQuery, { io: 'input', unrepresentable: 'any' }).properties ?? {}).map(
              ([name, schema]) => ({
                name,
                in: 'query',
                description: `${(schema as { description?: string }).description ?? name} (JSONL uploads; a JSON body carries it as a field)`,
                schema,
              }),
            ),
          ],
          requestBody: {
            required: true,
            content: {
              ...json(BatchBody, 'input'),
              'application/x-ndjson': {
                schema: { type: 'string', description: 'One spec input (a JSON object) per line' },
              },
            },
          },
          responses: {
            '200': { description: 'Idempotent replay: the existing batch', content: json(BatchViewSchema) },
            '202': { description: 'Queued', content: json(BatchViewSchema) },
            ...pick('400', '401', '404', '413', '415', '422', '429', '503'),
          },
        },
      },
      '/v1/batches/{id}': {
        get: {
          operationId: 'getBatch',
          summary: 'Read a batch: status, counts, timestamps',
          parameters: [batchIdParam],
          responses: { '200': { description: 'Batch', content: json(BatchViewSchema) }, ...pick('401', '404', '503') },
        },
      },
      '/v1/batches/{id}/results': {
        get: {
          operationId: 'batchResults',
          summary: 'Result lines finished so far (JSONL), in completion order or ?order=input',
          parameters: [
            batchIdParam,
            {
              name: 'order',
              in: 'query',
              description: 'completion (as items finished) or input (by index)',
              schema: { type: 'string', enum: ['completion', 'input'], default: 'completion' },
            },
          ],
          responses: {
            '200': {
              description: 'One JSON object per line',
              content: {
                'application/x-ndjson': {
                  schema: z.toJSONSchema(BatchResultLineSchema, { io: 'output', unrepresentable: 'any' }),
                },
              },
            },
            ...pick('400', '401', '404', '503'),
          },
        },
      },
      '/v1/batches/{id}/cancel': {
        post: {
          operationId: 'cancelBatch',
          summary: 'Cancel the items not yet started (running ones finish)',
          parameters: [batchIdParam],
          responses: {
            '200': { description: 'Batch', content: json(BatchViewSchema) },
            ...pick('401', '404', '409', '503'),
          },
        },
      },
      '/v1/workers': {
        get: {
          operationId: 'workers',
          summary: 'Live workers',
          responses: { '200': { description: 'Workers', content: json(WorkersSchema) }, ...pick('401', '503') },
        },
      },
      '/v1/usage': {
        get: {
          operationId: 'usage',
          summary: "The calling tenant's waiting jobs and stored bytes per model, against its limits",
          parameters: [
            {
              name: 'tenant',
              in: 'query',
              required: false,
              description: 'Another tenant (admin keys only)',
              schema: { type: 'string' },
            },
          ],
          responses: { '200': { description: 'Usage', content: json(UsageSchema) }, ...pick('401', '403', '503') },
        },
      },
      // The operations endpoints answer no client error: they take no input and no key.
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Liveness',
          security: [],
          responses: { '200': { description: 'Alive' } },
        },
      },
      '/readyz': {
        get: {
          operationId: 'ready',
          summary: 'Readiness (Redis accepts writes)',
          security: [],
          responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          // Not on this document's server: the public port answers /metrics with 404.
          servers: [
            {
              url: 'http://{host}:{port}',
              description: "The API's metrics listener (API_METRICS_HOST:API_METRICS_PORT), not the public port",
              variables: {
                host: { default: '127.0.0.1', description: 'API_METRICS_HOST (loopback unless bound for the scraper)' },
                port: { default: '9463', description: 'API_METRICS_PORT' },
              },
            },
          ],
          summary:
            "Prometheus metrics: served on the API's metrics listener (API_METRICS_PORT, loopback by default), not on the public port",
          security: [],
          responses: { '200': { description: 'Text format' } },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1' } },
        },
      },
    },
  };
}
