/** Job routes: submit, read, cancel, synchronous predict (docs/api.md "Jobs" and "Synchronous predict"). */
import type { Request, Response } from 'express';
import { SpecError, type ErrorKind } from '../../shared/errors.js';
import { TASKS, type TaskName } from '../../shared/tasks.js';
import type { WebhookEvent } from '../../shared/jobs/payload.js';
import { firstProblem } from '../../shared/validation.js';
import { WebhookTargetPolicy } from '../../shared/webhooks/target-policy.js';
import { validateInput } from '../input-validation.js';
import { checkPriorityCeiling } from '../priority-ceiling.js';
import { checkWebhookTarget } from '../webhook-option.js';
import { requestHash } from '../idempotency.js';
import { DeletedSchema, SubmitBody } from '../schemas.js';
import type { ApiContext } from '../context.js';
import { traceIntake } from '../request-spans.js';
import type { Parameter, RouteDef } from '../route-table.js';
import { answerRef, anyOutput, inputRef, jobRef, jobViewSchema, submitBodySchema } from '../openapi.js';

const preferParam: Parameter = {
  name: 'Prefer',
  in: 'header',
  description: 'wait=N: hold the answer up to N seconds (capped by MODELHUB_PREDICT_WAIT_S) until the job finishes',
  schema: { type: 'string', examples: ['wait=10'] },
};
import { activeTraceId, activeTraceparent } from '../../shared/tracing.js';

/** `Prefer: wait=N` → N seconds (capped by the server's limit), or 0. */
export function preferWait(header: string | undefined, maxSeconds: number): number {
  const m = header ? /(?:^|[,;\s])wait=(\d+)/i.exec(header) : null;
  return m ? Math.min(Number(m[1]), maxSeconds) : 0;
}

export function jobRoutes(ctx: ApiContext): RouteDef[] {
  const { jobs, options, metrics } = ctx;
  const { intake, tenancy, webhooks } = options;
  const targets = new WebhookTargetPolicy(webhooks.allowPrivate);

  function webhookOf(body: { webhook?: string; webhook_events_filter?: ('start' | 'completed')[] }) {
    if (!body.webhook) {
      if (body.webhook_events_filter) throw new SpecError('INVALID_OPTION', 'webhook_events_filter needs a webhook');
      return undefined;
    }
    checkWebhookTarget(webhooks, targets, body.webhook);
    return {
      url: body.webhook,
      events: [...new Set<WebhookEvent>(body.webhook_events_filter ?? ['start', 'completed'])],
    };
  }

  const submit = async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const body = SubmitBody.safeParse(req.body ?? {});
    if (!body.success) throw new SpecError('INVALID_INPUT', firstProblem(body.error));
    const input = await traceIntake(res, model, () => validateInput(entry, body.data.input, intake));
    const key = req.get('idempotency-key');
    if (key !== undefined && (key.length === 0 || key.length > 255))
      throw new SpecError('INVALID_OPTION', 'Idempotency-Key must be 1 to 255 characters');
    const webhook = webhookOf(body.data);
    checkPriorityCeiling(tenancy, req, body.data.priority);
    // Compared after validation and defaults: equal requests hash equally however spelled.
    const normalized = {
      input,
      priority: body.data.priority,
      timeout_s: body.data.timeout_s,
      webhook: webhook && { url: webhook.url, events: [...webhook.events].sort() },
    };
    const wait = preferWait(req.get('prefer'), options.predictWaitS);
    const { view, replayed } = await jobs.submit(model, input, {
      tenant: req.tenant,
      priority: body.data.priority,
      timeoutS: body.data.timeout_s,
      webhook,
      waitS: wait,
      ...(key ? { idempotency: { key, requestHash: requestHash(model, normalized) } } : {}),
    });
    if (!replayed) metrics.jobsSubmitted.inc({ model });
    const current = view;
    const finished = current.status !== 'queued' && current.status !== 'running';
    res.location(view.urls.get);
    if (replayed || finished) {
      res.status(200).json(current);
      return;
    }
    res.status(202).json(
      wait > 0
        ? current
        : {
            id: view.id,
            model: view.model,
            status: view.status,
            created_at: view.created_at,
            urls: view.urls,
            ...(view.trace_id ? { trace_id: view.trace_id } : {}),
          },
    );
  };

  const get = async (req: Request, res: Response) => {
    // Prefer: wait=N holds the read until the job finishes (the SDK's wait() uses it before polling).
    const wait = preferWait(req.get('prefer'), options.predictWaitS);
    const id = String(req.params.id);
    res.json(wait > 0 ? await jobs.waitFor(id, req.tenant, wait) : await jobs.get(id, req.tenant));
  };

  const predict = async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const input = await traceIntake(res, model, () => validateInput(entry, req.body, intake));
    if (!entry.modelPath)
      throw new SpecError('MODEL_UNAVAILABLE', `model "${model}" is unavailable: its model file is not installed`);
    const traceId = activeTraceId();
    const traceparent = activeTraceparent();
    const { view, entryItems } = await ctx.predict.predict(model, {
      tenant: req.tenant,
      input,
      ...(traceId ? { traceId } : {}),
      ...(traceparent ? { traceparent } : {}),
    });
    metrics.jobsSubmitted.inc({ model });
    if (view.status === 'succeeded') {
      // How many calls shared this one's queue entry (1: it went alone).
      res.json({ ...view.output, metrics: { entry_items: entryItems } });
      return;
    }
    if ((view.status === 'queued' || view.status === 'running') && jobs.closing) {
      throw new SpecError(
        'STORE_UNAVAILABLE',
        `this API instance is shutting down; the job continues: GET /v1/jobs/${view.id}`,
        {},
        view.id,
      );
    }
    if (view.status === 'queued' || view.status === 'running') {
      throw new SpecError(
        'WAIT_TIMEOUT',
        `the job did not finish within ${options.predictWaitS}s; it continues: GET /v1/jobs/${view.id}`,
        {},
        view.id,
      );
    }
    const out = view.output as { error_code: number };
    res.status(SpecError.statusOfCode(out.error_code)).json(view.output);
  };

  return [
    {
      method: 'post',
      path: '/v1/models/:model/jobs',
      operationId: 'submit',
      summary: 'Submit a job',
      parameters: [
        {
          name: 'Idempotency-Key',
          in: 'header',
          description: 'The same key and request return the same job',
          schema: { type: 'string', maxLength: 255 },
        },
        preferParam,
      ],
      body: { 'application/json': SubmitBody },
      replies: {
        '200': {
          description: 'Finished within Prefer: wait, or an idempotent replay',
          content: { 'application/json': jobViewSchema(anyOutput()) },
        },
        '202': {
          description: 'Queued: id, model, status, created_at, urls (the whole job with Prefer: wait)',
          content: { 'application/json': jobViewSchema(anyOutput()) },
        },
      },
      errors: [...SUBMIT_ERRORS, 'INVALID_OPTION', 'CONFLICT', 'IDEMPOTENCY_MISMATCH'],
      perModel: (task) => {
        const view = { 'application/json': jobRef(task) };
        return {
          body: { 'application/json': submitBodySchema(inputRef(task)) },
          replies: {
            '200': { description: 'Finished within Prefer: wait, or an idempotent replay', content: view },
            '202': { description: 'Queued (the whole job with Prefer: wait)', content: view },
          },
        };
      },
      handlers: [submit],
    },
    {
      method: 'post',
      path: '/v1/models/:model/predict',
      operationId: 'predict',
      summary: 'Synchronous predict: the spec input in, the spec output out',
      description:
        "The model's own path (/v1/models/{name}/predict) gives its task's input and answer. A failed job answers its spec error with the error's status.",
      body: { 'application/json': { anyOf: Object.keys(TASKS).map((t) => inputRef(t as TaskName)) } },
      replies: {
        '200': {
          description: 'Spec output, and metrics.entry_items',
          content: { 'application/json': { anyOf: (Object.keys(TASKS) as TaskName[]).map(answerRef) } },
        },
      },
      errors: [...SUBMIT_ERRORS, ...JOB_OUTCOME_ERRORS, 'WAIT_TIMEOUT'],
      perModel: (task) => ({
        body: { 'application/json': inputRef(task) },
        replies: {
          '200': {
            description: 'Spec output, and metrics.entry_items',
            content: { 'application/json': answerRef(task) },
          },
        },
      }),
      handlers: [predict],
    },
    {
      method: 'get',
      path: '/v1/jobs/:id',
      operationId: 'get',
      summary: 'Read a job',
      parameters: [preferParam],
      replies: { '200': { description: 'Job', content: { 'application/json': jobViewSchema(anyOutput()) } } },
      errors: ['JOB_NOT_FOUND', 'STORE_UNAVAILABLE'],
      handlers: [get],
    },
    {
      method: 'delete',
      path: '/v1/jobs/:id',
      operationId: 'delete',
      summary: "Delete a finished job's input and output",
      replies: { '200': { description: 'Deleted', content: { 'application/json': DeletedSchema } } },
      errors: ['JOB_NOT_FOUND', 'CONFLICT', 'STORE_UNAVAILABLE'],
      handlers: [async (req, res) => void res.json(await jobs.remove(String(req.params.id), req.tenant))],
    },
    {
      method: 'post',
      path: '/v1/jobs/:id/cancel',
      operationId: 'cancel',
      summary: 'Cancel a queued job',
      replies: { '200': { description: 'Canceled', content: { 'application/json': jobViewSchema(anyOutput()) } } },
      errors: ['JOB_NOT_FOUND', 'CONFLICT', 'STORE_UNAVAILABLE'],
      handlers: [async (req, res) => void res.json(await jobs.cancel(String(req.params.id), req.tenant))],
    },
  ];
}

/** What a submission (job or predict) may be refused with, besides the door's. */
const SUBMIT_ERRORS: ErrorKind[] = [
  'MODEL_NOT_FOUND',
  'MODEL_UNAVAILABLE',
  'INVALID_INPUT',
  'INVALID_IMAGE',
  'IMAGE_TOO_LARGE',
  'UNSUPPORTED_IMAGE_FORMAT',
  'OUTPUT_TOO_LARGE',
  'QUEUE_FULL',
  'TENANT_QUOTA',
  'STORE_UNAVAILABLE',
];

/** How a job that ran may fail: predict answers its error with the error's status. */
const JOB_OUTCOME_ERRORS: ErrorKind[] = [
  'INVALID_INPUT',
  'INVALID_IMAGE',
  'IMAGE_DECODE_TIMEOUT',
  'OUTPUT_TOO_LARGE',
  'INFERENCE_FAILED',
  'DEADLINE_EXCEEDED',
  'CANCELED',
  'INTERNAL',
];
