/** OpenAPI 3.1 document of the whole API, generated from the zod schemas that validate requests. */
import { z } from 'zod';
import { TASKS } from '../shared/tasks.js';
import { AcceptedSchema, CatalogSchema, JobViewSchema, SpecErrorSchema, SubmitBody, WorkersSchema } from './schemas.js';

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') => ({ 'application/json': { schema: z.toJSONSchema(schema, { io, unrepresentable: 'any' }) } });
const error = (description: string) => ({ description, content: json(SpecErrorSchema) });
const modelParam = { name: 'model', in: 'path', required: true, schema: { type: 'string' } };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const commonErrors = {
  '400': error('Bad input'),
  '401': error('Missing or invalid API key'),
  '404': error('Unknown model, job or route'),
  '413': error('Body or image too large'),
  '503': error('Redis unreachable'),
};

export function buildOpenApi(version: string): Record<string, unknown> {
  const anyInput = { oneOf: Object.entries(TASKS).map(([task, t]) => ({ title: task, ...z.toJSONSchema(t.input, { io: 'input', unrepresentable: 'any' }) })) };
  return {
    openapi: '3.1.0',
    info: { title: 'ModelHub API', version, description: 'Queue-driven model serving: submit jobs, poll or wait, or predict synchronously.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Only when MODELHUB_API_KEYS is set' } },
    },
    security: [{ bearer: [] }, {}],
    paths: {
      '/v1/models': { get: { summary: 'List models', responses: { '200': { description: 'Catalog', content: json(CatalogSchema) } } } },
      '/v1/models/{model}': {
        get: { summary: 'One model: inputs, outputs, batching', parameters: [modelParam], responses: { '200': { description: 'Model' }, '404': commonErrors['404'] } },
      },
      '/v1/models/{model}/example': {
        get: { summary: 'A ready sample input', parameters: [modelParam], responses: { '200': { description: 'Spec input', content: { 'application/json': { schema: anyInput } } }, '404': commonErrors['404'] } },
      },
      '/v1/models/{model}/jobs': {
        post: {
          summary: 'Submit a job',
          parameters: [
            modelParam,
            { name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 } },
            { name: 'Prefer', in: 'header', schema: { type: 'string', example: 'wait=10' } },
          ],
          requestBody: { required: true, content: json(SubmitBody, 'input') },
          responses: {
            '200': { description: 'Finished within Prefer: wait, or an idempotent replay', content: json(JobViewSchema) },
            '202': { description: 'Queued', content: json(AcceptedSchema) },
            ...commonErrors,
            '422': error('Idempotency-Key reused with another body'),
            '429': error('Queue full (Retry-After)'),
          },
        },
      },
      '/v1/models/{model}/predict': {
        post: {
          summary: 'Synchronous predict: the spec input in, the spec output out',
          parameters: [modelParam],
          requestBody: { required: true, content: { 'application/json': { schema: anyInput } } },
          responses: { '200': { description: 'Spec output' }, ...commonErrors, '429': error('Queue full'), '504': error('Wait limit passed; the job continues') },
        },
      },
      '/v1/jobs/{id}': { get: { summary: 'Read a job', parameters: [idParam], responses: { '200': { description: 'Job', content: json(JobViewSchema) }, '404': commonErrors['404'] } } },
      '/v1/jobs/{id}/cancel': {
        post: { summary: 'Cancel a queued job', parameters: [idParam], responses: { '200': { description: 'Canceled', content: json(JobViewSchema) }, '404': commonErrors['404'], '409': error('Running or finished') } },
      },
      '/v1/workers': { get: { summary: 'Live workers', responses: { '200': { description: 'Workers', content: json(WorkersSchema) } } } },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'Alive' } } } },
      '/readyz': { get: { summary: 'Readiness (Redis answers)', security: [], responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Text format' } } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
