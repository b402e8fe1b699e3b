/**
 * The OpenAPI 3.1 document (/openapi.json), written from the route table (api/route-table.ts):
 * each entry's schemas, its own errors plus the /v1 door's, and, under /v1/models/{model}/, a
 * path per served model with that model's task input and answer. operationId is the SDK method
 * (clients/typescript) that calls the route, `.<model>` added on a model's own path. A test lints
 * the document with Redocly's recommended rules, another holds real traffic to it.
 */
import { z } from 'zod';
import { ErrorCodes, type ErrorKind } from '../shared/errors.js';
import { TASKS, type TaskName } from '../shared/tasks.js';
import { TASK_OUTPUTS } from '../shared/task-outputs.js';
import { openApiPath, type JsonSchema, type Reply, type RouteDef, type Schema } from './route-table.js';
import { JobViewSchema, PredictMetricsSchema, SpecErrorSchema, SubmitBody } from './schemas.js';

/** What each error means, for the answers' descriptions (codes and statuses: shared/errors.ts). */
const ERROR_MEANING: Record<ErrorKind, string> = {
  BAD_JSON: 'the body is not valid JSON',
  INVALID_INPUT: 'a missing, unknown or wrong-typed field, or JSON nested too deep or too large',
  INVALID_IMAGE: 'the image is not valid base64 or not a decodable image',
  IMAGE_TOO_LARGE: 'the image is over MODELHUB_MAX_IMAGE_BYTES or MODELHUB_MAX_IMAGE_PIXELS',
  BODY_TOO_LARGE: 'the body (or a batch, or a batch line) is over its limit',
  INVALID_OPTION: 'an option is invalid (webhook, priority above the key’s ceiling, Idempotency-Key, order)',
  UNSUPPORTED_IMAGE_FORMAT: 'the image format is not one the model accepts (its catalog entry lists them)',
  IMAGE_DECODE_TIMEOUT: 'decoding or resizing the image took longer than MODELHUB_IMAGE_DECODE_TIMEOUT_S',
  OUTPUT_TOO_LARGE: 'the answer in the requested encoding would pass the result limit (ask for rle or png)',
  UNSUPPORTED_MEDIA_TYPE: 'the body is compressed (Content-Encoding) or not UTF-8',
  UNAUTHORIZED: 'missing or invalid API key (only when MODELHUB_API_KEYS is set)',
  FORBIDDEN: 'this key may not do that',
  MODEL_NOT_FOUND: 'no model of that name',
  JOB_NOT_FOUND: 'no such job or batch (or another tenant’s)',
  ROUTE_NOT_FOUND: 'no such route',
  MODEL_UNAVAILABLE: 'the model’s file is not installed',
  EXAMPLE_NOT_FOUND: 'the model has no sample input',
  CONFLICT: 'the job or batch is running or finished, or a request with this Idempotency-Key is in flight',
  IDEMPOTENCY_MISMATCH: 'this Idempotency-Key was used with another request',
  QUEUE_FULL: 'the model’s queue is full',
  TENANT_QUOTA: 'the tenant’s waiting-jobs, batch-items or stored-bytes quota is used up',
  RATE_LIMITED: 'the tenant sends requests or bytes faster than its rate limit',
  BUSY: 'the API is parsing as many bodies as it allows at once',
  STORE_UNAVAILABLE: 'the job store (Redis) did not answer, or this API instance is shutting down',
  WAIT_TIMEOUT: 'the job did not finish within the wait limit; it continues',
  INFERENCE_FAILED: 'inference failed',
  DEADLINE_EXCEEDED: 'the job’s deadline (timeout_s) passed',
  CANCELED: 'the job was canceled',
  INTERNAL: 'internal error',
};

/**
 * What every /v1 route may answer before or around its own work: the key check, the tenant's
 * rates, the body checks and the parse budget (api/app.ts), the JSON parser, an internal error.
 */
export const DOOR_ERRORS: readonly ErrorKind[] = [
  'UNAUTHORIZED',
  'RATE_LIMITED',
  'UNSUPPORTED_MEDIA_TYPE',
  'BUSY',
  'BODY_TOO_LARGE',
  'BAD_JSON',
  'INVALID_INPUT',
  'INTERNAL',
];

/** Errors that carry Retry-After. */
const RETRY_STATUSES = new Set(['429', '503']);

const PATH_PARAMETERS: Record<string, string> = {
  model: 'Model name, as listed by GET /v1/models',
  id: "Job id (a predict answer's request_id is one too)",
};

const pascal = (task: string) => task.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());
/** The components that hold a task's input and answer. */
export const inputRef = (task: TaskName): JsonSchema => ({ $ref: `#/components/schemas/${pascal(task)}Input` });
export const outputRef = (task: TaskName): JsonSchema => ({ $ref: `#/components/schemas/${pascal(task)}Output` });
/** The job object of a model of this task: its output is the task's answer or a spec error. */
export const jobRef = (task: TaskName): JsonSchema => ({ $ref: `#/components/schemas/${pascal(task)}Job` });
/** A predict answer: the task's answer and its `metrics` (entry_items). */
export const answerRef = (task: TaskName): JsonSchema => ({ $ref: `#/components/schemas/${pascal(task)}Answer` });
export const SPEC_ERROR_REF: JsonSchema = { $ref: '#/components/schemas/SpecError' };
const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** Any task's answer (and, `withError`, a failed job's spec error): a job's `output` when its model is not known. */
export const anyOutput = (withError = true): JsonSchema[] => [
  ...TASK_NAMES.map(outputRef),
  ...(withError ? [SPEC_ERROR_REF] : []),
];

/** The job object, its `output` one of `outputs`. */
export function jobViewSchema(outputs: JsonSchema[]): JsonSchema {
  const view = jsonSchema(JobViewSchema, 'output') as { properties: Record<string, JsonSchema> };
  const described = view.properties.output.description;
  return {
    ...view,
    properties: { ...view.properties, output: { description: described, anyOf: outputs } },
  };
}

/** The submit body with `input` the given schema (a model's own task input). */
export function submitBodySchema(input: JsonSchema): JsonSchema {
  const body = jsonSchema(SubmitBody, 'input') as { properties: Record<string, JsonSchema> };
  return { ...body, properties: { ...body.properties, input } };
}

/** A schema as JSON Schema: zod converted (`io` input for requests), without its `$schema` line. */
export function jsonSchema(schema: Schema, io: 'input' | 'output'): JsonSchema {
  if (!(schema instanceof z.ZodType)) return schema;
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
}

const content = (media: Record<string, Schema>, io: 'input' | 'output', extensions: Reply['extensions'] = {}) =>
  Object.fromEntries(
    Object.entries(media).map(([type, s]) => [type, { schema: jsonSchema(s, io), ...(extensions[type] ?? {}) }]),
  );

/** The error answers of a set of kinds, one per status: which codes, and why. */
function errorReplies(kinds: readonly ErrorKind[]): Record<string, unknown> {
  const byStatus = new Map<string, ErrorKind[]>();
  for (const kind of new Set(kinds)) {
    const status = String(ErrorCodes[kind].status);
    byStatus.set(status, [...(byStatus.get(status) ?? []), kind]);
  }
  const out: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => Number(a) - Number(b))) {
    list.sort((a, b) => ErrorCodes[a].code - ErrorCodes[b].code);
    out[status] = {
      description: list.map((k) => `${ErrorCodes[k].code}: ${ERROR_MEANING[k]}`).join('; '),
      ...(RETRY_STATUSES.has(status)
        ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'string' } } } }
        : {}),
      content: {
        'application/json': {
          schema: {
            allOf: [SPEC_ERROR_REF],
            properties: { error_code: { enum: list.map((k) => ErrorCodes[k].code) } },
          },
        },
      },
    };
  }
  return out;
}

function operation(route: RouteDef, replies: Record<string, Reply>, body: RouteDef['body'], pathParams: string[]) {
  const successes = Object.fromEntries(
    Object.entries(replies).map(([status, r]) => [
      status,
      { description: r.description, ...(r.content ? { content: content(r.content, 'output', r.extensions) } : {}) },
    ]),
  );
  const errors = errorReplies([...(route.open ? [] : DOOR_ERRORS), ...(route.errors ?? [])]);
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.servers ? { servers: route.servers } : {}),
    ...(route.open ? { security: [] } : {}),
    ...(pathParams.length + (route.parameters?.length ?? 0) > 0
      ? {
          parameters: [
            ...pathParams.map((name) => ({
              name,
              in: 'path',
              required: true,
              description: PATH_PARAMETERS[name] ?? name,
              schema: { type: 'string' },
            })),
            ...(route.parameters ?? []).map((p) => ({ ...p, schema: jsonSchema(p.schema, 'input') })),
          ],
        }
      : {}),
    ...(body
      ? {
          requestBody: {
            required: true,
            content: content(body, 'input', route.bodyExtensions),
          },
        }
      : {}),
    responses: { ...successes, ...errors },
  };
}

/** The spec error object, its error_code one of the named codes (title: the name; description: the status and meaning). */
function specErrorSchema(): JsonSchema {
  const error = jsonSchema(SpecErrorSchema, 'output') as { properties: Record<string, JsonSchema> };
  const codes = (Object.entries(ErrorCodes) as [ErrorKind, { code: number; status: number }][]).map(
    ([kind, { code, status }]) => ({ const: code, title: kind, description: `HTTP ${status}: ${ERROR_MEANING[kind]}` }),
  );
  return { ...error, properties: { ...error.properties, error_code: { type: 'integer', anyOf: codes } } };
}

export interface OpenApiOptions {
  version: string;
  /** The models this hub serves and their tasks: each gets its own paths. */
  models: ReadonlyMap<string, TaskName>;
}

export function buildOpenApi(routes: readonly RouteDef[], { version, models }: OpenApiOptions): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, op: unknown) => {
    paths[path] = { ...paths[path], [method]: op };
  };
  for (const route of routes) {
    const path = openApiPath(route.path);
    const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    add(path, route.method, operation(route, route.replies, route.body, params));
  }
  // A model's own paths after the templated ones: a concrete path is matched before a template.
  for (const route of routes) {
    if (!route.perModel) continue;
    for (const [name, task] of [...models].sort(([a], [b]) => a.localeCompare(b))) {
      const variant = route.perModel(task);
      const path = openApiPath(route.path).replace('{model}', name);
      const params = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]).filter((p) => p !== 'model');
      const op = operation(
        {
          ...route,
          operationId: `${route.operationId}.${name}`,
          summary: `${route.summary} (${name}: ${task})`,
          // The model of its own path exists.
          errors: route.errors?.filter((kind) => kind !== 'MODEL_NOT_FOUND'),
        },
        { ...route.replies, ...variant.replies },
        variant.body ?? route.body,
        params,
      );
      add(path, route.method, op);
    }
  }
  const schemas: Record<string, JsonSchema> = { SpecError: specErrorSchema() };
  for (const [task, info] of Object.entries(TASKS) as [TaskName, (typeof TASKS)[TaskName]][]) {
    schemas[`${pascal(task)}Input`] = { title: task, ...jsonSchema(info.input, 'input') };
    schemas[`${pascal(task)}Output`] = { title: task, ...jsonSchema(TASK_OUTPUTS[task], 'output') };
    schemas[`${pascal(task)}Job`] = jobViewSchema([outputRef(task), SPEC_ERROR_REF]);
    schemas[`${pascal(task)}Answer`] = {
      title: task,
      description: "The task's answer, and how many predict calls shared this call's queue entry (metrics)",
      ...jsonSchema(TASK_OUTPUTS[task].extend({ metrics: PredictMetricsSchema }), 'output'),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'ModelHub API',
      version,
      description:
        'Queue-driven model serving: submit jobs, poll or wait, or predict synchronously. Each served model has its own ' +
        'paths under /v1/models/{name}/ with its task’s input and answer. Every error is a spec error object; an unknown ' +
        'route answers 404 (1203).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'The hub that serves this document' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Only when MODELHUB_API_KEYS is set' },
      },
      schemas,
    },
    security: [{ bearer: [] }, {}],
    paths,
  };
}
