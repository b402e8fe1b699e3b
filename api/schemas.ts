/**
 * Request and response schemas of the HTTP API. The same zod schemas validate requests and
 * generate /openapi.json, so the document cannot drift from what the server accepts.
 */
import { z } from 'zod';
import { ALLOWED_IMAGE_FORMATS } from '../shared/image-formats.js';
import { TASKS, type TaskName } from '../shared/tasks.js';

export const SubmitBody = z.strictObject({
  input: z.record(z.string(), z.unknown()).describe("Exactly the model's spec input (see GET /v1/models/{model})"),
  webhook: z.string().max(2048).optional().describe('http(s) URL that receives signed job events'),
  webhook_events_filter: z
    .array(z.enum(['start', 'completed']))
    .min(1)
    .optional()
    .describe('Events to send; default both'),
  priority: z.number().int().min(1).max(10).default(5).describe('1 is highest'),
  timeout_s: z
    .number()
    .positive()
    .max(7 * 24 * 3600)
    .optional()
    .describe('Deadline from submission; past it the job ends as failed'),
});

const BatchOptionFields = {
  webhook: z.string().max(2048).optional().describe('http(s) URL that receives one signed batch.completed event'),
  priority: z.coerce
    .number()
    .int()
    .min(1)
    .max(10)
    .default(5)
    .describe('1 is first among batches; every batch ranks below every interactive job'),
  timeout_s: z.coerce
    .number()
    .positive()
    .max(7 * 24 * 3600)
    .optional()
    .describe('Deadline from submission; items not started by then fail'),
};

/** JSON batch body. A JSONL body (application/x-ndjson) carries the same options as query parameters. */
export const BatchBody = z.strictObject({
  inputs: z.array(z.unknown()).min(1).describe("The model's spec inputs, one per item"),
  ...BatchOptionFields,
});

export const BatchQuery = z.object(BatchOptionFields);

export const BatchViewSchema = z.object({
  id: z.string(),
  object: z.literal('batch'),
  model: z.string(),
  status: z.enum(['queued', 'running', 'completed', 'canceled']),
  counts: z.object({
    total: z.number().int(),
    queued: z.number().int(),
    running: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    canceled: z.number().int(),
  }),
  created_at: z.string(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
  canceled_at: z.string().optional(),
  urls: z.object({ get: z.string(), results: z.string(), cancel: z.string() }),
});

export const BatchResultLineSchema = z.object({
  index: z.number().int().describe('0-based position of the item in the upload'),
  status: z.enum(['succeeded', 'failed', 'canceled']),
  output: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("The model's spec output (with request_id, success, error_code)"),
  error: z
    .object({
      success: z.literal(false),
      error_code: z.number().int(),
      error_msg: z.string(),
      request_id: z.string().optional(),
    })
    .optional(),
  completed_at: z.string(),
});

export const SpecErrorSchema = z.object({
  success: z.literal(false),
  error_code: z.number().int(),
  error_msg: z.string(),
  request_id: z.string().optional(),
});

/** The `metrics` of a predict answer. */
export const PredictMetricsSchema = z.object({
  entry_items: z
    .number()
    .int()
    .min(1)
    .describe("How many predict calls shared this call's queue entry (1: it went alone)"),
});

export const JobViewSchema = z.object({
  id: z.string(),
  model: z.string(),
  status: z.enum(['queued', 'running', 'succeeded', 'failed', 'canceled']),
  created_at: z.string(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
  output: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("The model's spec output with request_id, success, error_code (error_msg on failure)"),
  metrics: z
    .object({
      queue_ms: z.number(),
      inference_ms: z.number(),
      batch_size: z.number().int(),
      entry_items: z
        .number()
        .int()
        .optional()
        .describe('A coalesced predict call: how many predict calls shared its queue entry'),
      weights_sha256: z.string().optional().describe('sha256 of the weights file that answered'),
      weights: z
        .enum(['verified', 'unverified', 'test'])
        .optional()
        .describe(
          "verified: a digest the model's manifest records; unverified: real weights it does not; test: a stand-in",
        ),
    })
    .optional(),
  webhook: z
    .object({ attempts: z.number().int(), last_status: z.string().nullable(), delivered_at: z.string().nullable() })
    .optional(),
  urls: z.object({ get: z.string(), cancel: z.string() }),
  trace_id: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional()
    .describe("The job's OpenTelemetry trace id, when the hub traces (an operator finds the job's trace by it)"),
});

export const AcceptedSchema = JobViewSchema.pick({
  id: true,
  model: true,
  status: true,
  created_at: true,
  urls: true,
  trace_id: true,
});

export const ModelSummarySchema = z.object({
  name: z.string(),
  task: z.enum(Object.keys(TASKS) as [TaskName, ...TaskName[]]),
  modality: z.enum(['image', 'text']).describe("What the model's input is: an image field, or text fields"),
  image_formats: z
    .array(z.enum(ALLOWED_IMAGE_FORMATS))
    .describe('The image file formats its `image` accepts (others answer 415, error_code 1007); empty for text'),
  description: z.string(),
  status: z.enum(['ready', 'no_workers', 'unavailable']),
  weights: z.enum(['real', 'test', 'missing']),
  weights_file: z.string().optional().describe('The weights file this hub resolved for the model (absent: none)'),
  weights_sha256: z.string().optional().describe("That file's sha256"),
  verification: z
    .enum(['verified', 'unverified', 'test'])
    .optional()
    .describe(
      'verified: the manifest records this digest; unverified: real weights whose digest it does not record; test: a generated stand-in',
    ),
  make_real: z
    .string()
    .optional()
    .describe('For a test or unavailable model: the command (or the instructions) that gives it real weights'),
  license: z.string().optional().describe("The weights file's licence, when its manifest says"),
  workers: z.number().int(),
  max_batch_size: z
    .number()
    .int()
    .describe(
      "Largest batch the live workers form (the manifest's, capped by a fixed batch dimension of the model file)",
    ),
  loaded: z
    .array(
      z.object({
        file: z.string(),
        sha256: z.string(),
        kind: z.enum(['real', 'test']),
        verification: z.enum(['verified', 'unverified', 'test']).optional(),
        workers: z.number().int(),
      }),
    )
    .describe('The weights files the live workers loaded, one entry per distinct sha256'),
  mixed_fleet: z.boolean().describe('Live workers serving this model loaded different files'),
  queue: z.object({ waiting: z.number().int(), active: z.number().int() }).nullable(),
});

export const CatalogSchema = z.object({ models: z.array(ModelSummarySchema) });

/** GET /v1/models/{model}: the summary, with its documentation, tensors and processing settings. */
export const ModelDetailSchema = ModelSummarySchema.extend({
  reference: z.string().optional().describe('Where the model comes from'),
  input: z.object({ schema: z.record(z.string(), z.unknown()).describe("The task's input, as JSON Schema") }),
  output: z.object({ fields: z.record(z.string(), z.string()).describe('Each output field and what it holds') }),
  tensors: z.object({ inputs: z.record(z.string(), z.string()), outputs: z.record(z.string(), z.string()) }),
  preprocess: z.record(z.string(), z.unknown()),
  postprocess: z.record(z.string(), z.unknown()),
  batching: z.record(z.string(), z.unknown()),
  num_labels: z.number().int(),
  labels: z
    .array(z.string().nullable())
    .nullable()
    .describe('Class names by id (null where an id has no name); null for a model without labels'),
  example: z.string().describe("The path of the model's sample input"),
});

export const DeletedSchema = z.object({ id: z.string(), deleted: z.literal(true) });

/** Admin keys (and an open API) see each worker; tenants see counts only. */
export const WorkersSchema = z.union([
  z.object({ workers: z.array(z.record(z.string(), z.unknown())), count: z.number().int() }),
  z.object({
    count: z.number().int(),
    by_device: z.record(z.string(), z.number().int()),
    by_model: z.record(z.string(), z.number().int()),
  }),
]);

/** A live count and its limit (0: no limit). */
const QuotaSchema = z.object({ used: z.number().int(), limit: z.number().int() });

/** GET /v1/usage: what a tenant holds against its quotas, per model (the counters the 429s are decided on). */
const RateBucketSchema = z.object({
  /** The bucket's refill rate; 0: no limit. */
  per_second: z.number(),
  /** Its capacity (the most spent at once). */
  burst: z.number(),
  /** What the tenant could spend now. */
  available: z.number(),
});

export const UsageSchema = z.object({
  tenant: z.string().nullable(),
  /** The tenant's request and body-byte rate buckets in the API process that answered (absent on an open hub). */
  rates: z.object({ requests: RateBucketSchema, bytes: RateBucketSchema }).optional(),
  models: z.record(
    z.string(),
    z.object({
      /** Jobs submitted and not yet started (TENANT_MAX_WAITING). */
      waiting: QuotaSchema,
      /** Inputs of jobs and batch items not yet finished plus kept results, bytes (TENANT_MAX_STORED_BYTES). */
      stored_bytes: QuotaSchema,
      /** Batches with items not yet finished (no limit of their own). */
      batches_in_flight: z.number().int(),
      /** Batch items staged and not yet finished (TENANT_MAX_BATCH_ITEMS). */
      batch_items: QuotaSchema,
      /** The part of stored_bytes that is batch items' inputs. */
      batch_stored_bytes: z.number().int(),
    }),
  ),
});

/** Deepest JSON nesting accepted in a request body. */
export const MAX_JSON_DEPTH = 32;
