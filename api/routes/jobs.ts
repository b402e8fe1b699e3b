/** Job routes: submit, read, synchronous predict (API.md "Jobs" and "Synchronous predict"). */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { SpecError } from '../../shared/errors.js';
import { validateInput } from '../input-validation.js';
import type { ApiContext } from '../context.js';

const SubmitBody = z.strictObject({
  input: z.unknown(),
  webhook: z.url({ protocol: /^https?$/, error: 'webhook must be an http(s) URL' }).optional(),
  webhook_events_filter: z.array(z.enum(['start', 'completed'])).optional(),
  priority: z.number().int().min(1).max(10).default(5),
  timeout_s: z.number().positive().max(7 * 24 * 3600).optional(),
});

/** `Prefer: wait=N` → N seconds (capped by the server's limit), or 0. */
export function preferWait(header: string | undefined, maxSeconds: number): number {
  const m = header ? /(?:^|[,;\s])wait=(\d+)/i.exec(header) : null;
  return m ? Math.min(Number(m[1]), maxSeconds) : 0;
}

export function jobRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { jobs, config, metrics } = ctx;

  router.post('/v1/models/:model/jobs', async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const body = SubmitBody.safeParse(req.body ?? {});
    if (!body.success) {
      const issue = body.error.issues[0];
      const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
      throw new SpecError('INVALID_INPUT', issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : `${where}${issue.message}`);
    }
    if (body.data.input === undefined) throw new SpecError('INVALID_INPUT', 'input is required');
    const input = await validateInput(entry, body.data.input, config);
    const view = await jobs.submit(model, input, { tenant: req.tenant, priority: body.data.priority, timeoutS: body.data.timeout_s });
    metrics.jobsSubmitted.inc({ model });
    const wait = preferWait(req.get('prefer'), config.PREDICT_WAIT_S);
    if (wait > 0) {
      const done = await jobs.waitFor(view.id, req.tenant, wait);
      if (done.status !== 'queued' && done.status !== 'running') {
        res.status(200).json(done);
        return;
      }
      res.status(202).json(done);
      return;
    }
    res.status(202).location(view.urls.get).json({ id: view.id, model: view.model, status: view.status, created_at: view.created_at, urls: view.urls });
  });

  router.get('/v1/jobs/:id', async (req: Request, res: Response) => {
    res.json(await jobs.get(String(req.params.id), req.tenant));
  });

  router.post('/v1/models/:model/predict', async (req: Request, res: Response) => {
    const model = String(req.params.model);
    const entry = jobs.model(model);
    const input = await validateInput(entry, req.body, config);
    const view = await jobs.submit(model, input, { tenant: req.tenant });
    metrics.jobsSubmitted.inc({ model });
    const done = await jobs.waitFor(view.id, req.tenant, config.PREDICT_WAIT_S);
    if (done.status === 'succeeded') {
      res.json(done.output);
      return;
    }
    if (done.status === 'queued' || done.status === 'running') {
      throw new SpecError('WAIT_TIMEOUT', `the job did not finish within ${config.PREDICT_WAIT_S}s; it continues: GET /v1/jobs/${view.id}`, {}, view.id);
    }
    const out = done.output as { error_code: number };
    res.status(SpecError.statusOfCode(out.error_code)).json(done.output);
  });

  return router;
}
