/** Job routes: submit, read, cancel, synchronous predict (API.md "Jobs" and "Synchronous predict"). */
import { Router, type Request, type Response } from 'express';
import { SpecError } from '../../shared/errors.js';
import type { WebhookEvent } from '../../shared/jobs/payload.js';
import { firstProblem } from '../../shared/validation.js';
import { WebhookTargetPolicy } from '../../shared/webhooks/target-policy.js';
import { validateInput } from '../input-validation.js';
import { checkPriorityCeiling } from '../priority-ceiling.js';
import { checkWebhookTarget } from '../webhook-option.js';
import { requestHash } from '../idempotency.js';
import { SubmitBody } from '../schemas.js';
import type { ApiContext } from '../context.js';
import { traceIntake } from '../request-spans.js';

/** `Prefer: wait=N` → N seconds (capped by the server's limit), or 0. */
export function preferWait(header: string | undefined, maxSeconds: number): number {
  const m = header ? /(?:^|[,;\s])wait=(\d+)/i.exec(header) : null;
  return m ? Math.min(Number(m[1]), maxSeconds) : 0;
}

export function jobRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { jobs, config, metrics } = ctx;
  const targets = new WebhookTargetPolicy(config.WEBHOOK_ALLOW_PRIVATE);

  function webhookOf(body: { webhook?: string; webhook_events_filter?: ('start' | 'completed')[] }) {
    if (!body.webhook) {
      if (body.webhook_events_filter) throw new SpecError('INVALID_OPTION', 'webhook_events_filter needs a webhook');
      return undefined;
    }
    checkWebhookTarget(config, targets, body.webhook);
    return {
      url: body.webhook,
      events: [...new Set<WebhookEvent>(body.webhook_events_filter ?? ['start', 'completed'])],
    };
  }

  router.post('/v1/models/:model/jobs', async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const body = SubmitBody.safeParse(req.body ?? {});
    if (!body.success) throw new SpecError('INVALID_INPUT', firstProblem(body.error));
    const input = await traceIntake(res, model, () => validateInput(entry, body.data.input, config, req.decodedImage));
    const key = req.get('idempotency-key');
    if (key !== undefined && (key.length === 0 || key.length > 255))
      throw new SpecError('INVALID_OPTION', 'Idempotency-Key must be 1 to 255 characters');
    const webhook = webhookOf(body.data);
    checkPriorityCeiling(config, req, body.data.priority);
    // Compared after validation and defaults: equal requests hash equally however spelled.
    const normalized = {
      input,
      priority: body.data.priority,
      timeout_s: body.data.timeout_s,
      webhook: webhook && { url: webhook.url, events: [...webhook.events].sort() },
    };
    const wait = preferWait(req.get('prefer'), config.PREDICT_WAIT_S);
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
  });

  router.get('/v1/jobs/:id', async (req: Request, res: Response) => {
    // Prefer: wait=N holds the read until the job finishes (the SDK's wait() uses it before polling).
    const wait = preferWait(req.get('prefer'), config.PREDICT_WAIT_S);
    const id = String(req.params.id);
    res.json(wait > 0 ? await jobs.waitFor(id, req.tenant, wait) : await jobs.get(id, req.tenant));
  });

  router.delete('/v1/jobs/:id', async (req: Request, res: Response) => {
    res.json(await jobs.remove(String(req.params.id), req.tenant));
  });

  router.post('/v1/jobs/:id/cancel', async (req: Request, res: Response) => {
    res.json(await jobs.cancel(String(req.params.id), req.tenant));
  });

  router.post('/v1/models/:model/predict', async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const input = await traceIntake(res, model, () => validateInput(entry, req.body, config, req.decodedImage));
    const { view: done } = await jobs.submit(model, input, {
      tenant: req.tenant,
      waitS: config.PREDICT_WAIT_S,
      outputOnly: true,
    });
    metrics.jobsSubmitted.inc({ model });
    const view = done;
    if (done.status === 'succeeded') {
      res.json(done.output);
      return;
    }
    if ((done.status === 'queued' || done.status === 'running') && jobs.closing) {
      throw new SpecError(
        'STORE_UNAVAILABLE',
        `this API instance is shutting down; the job continues: GET /v1/jobs/${view.id}`,
        {},
        view.id,
      );
    }
    if (done.status === 'queued' || done.status === 'running') {
      throw new SpecError(
        'WAIT_TIMEOUT',
        `the job did not finish within ${config.PREDICT_WAIT_S}s; it continues: GET /v1/jobs/${view.id}`,
        {},
        view.id,
      );
    }
    const out = done.output as { error_code: number };
    res.status(SpecError.statusOfCode(out.error_code)).json(done.output);
  });

  return router;
}
