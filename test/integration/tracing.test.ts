/**
 * OpenTelemetry traces end to end: a job submitted with a W3C traceparent is traced through the
 * API (this process) and a worker process into the test's own OTLP/HTTP receiver (http/json);
 * the spans of both processes share the caller's trace and form one tree; a batch's span links
 * to every job in it; each webhook delivery belongs to its own job's trace; http/protobuf export
 * works too. Run with PRINT_TRACE=1 to print a trace's span tree.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { WEBHOOK_QUEUE, bulkQueueName, modelQueueName, predictQueueName } from '../../shared/redis/keys.js';
import { pollBatch, postJsonl } from '../helpers/batches.js';
import { tracingWanted, traceLogFields, inSpan } from '../../shared/tracing.js';
import { pollJob, postJson, startHub, whileWorkerHeld, type Hub, type WorkerProcess } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { startOtlpReceiver, spanTree, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const SECRET = `whsec_${Buffer.from('modelhub-test-webhook-secret-32b').toString('base64')}`;
const MODEL = 'resnet50';
const QUEUE = modelQueueName(MODEL);

const newTrace = () => ({ traceId: randomBytes(16).toString('hex'), parentId: randomBytes(8).toString('hex') });
const traceparent = (t: { traceId: string; parentId: string }) => `00-${t.traceId}-${t.parentId}-01`;
const ofTrace = (spans: ReceivedSpan[], traceId: string) => spans.filter((s) => s.traceId === traceId);
const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe('tracing rules', () => {
  it('is on only when an exporter or an OTLP endpoint is set, and OTEL_SDK_DISABLED is not', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });
});

describe('traces across the API and a worker', () => {
  let otlp: OtlpReceiver;
  let hooks: Receiver;
  let hub: Hub<WorkerProcess>;
  let image: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    hooks = await startReceiver();
    image = b64(await solidImage(64, 48, [30, 160, 90]));
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'always_on',
      // Export within 50 ms: the test waits for spans, not for the default 5 s schedule.
      OTEL_BSP_SCHEDULE_DELAY: '50',
    };
    // The API runs in this process: it reads the same variables.
    Object.assign(process.env, otel);
    hub = await startHub({
      workerProcesses: true,
      name: 'tracing',
      models: MODEL,
      env: {
        ...otel,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
        WEBHOOK_BACKOFF_MS: '100',
        // Concurrent predicts surely share an entry (one test below).
        MODELHUB_PREDICT_COALESCE_MS: '300',
      },
    });
    const fleet = hub.api.ctx.predict.fleet;
    for (const deadline = Date.now() + 10_000; !fleet.serves(MODEL) && Date.now() < deadline;)
      await fleet.refresh().then(() => new Promise((r) => setTimeout(r, 100)));
  });
  afterAll(async () => {
    await hub?.stop();
    await hooks?.close();
    await otlp?.close();
    process.env = saved;
  });

  it('continues the caller’s trace through the queue: one tree over both processes, and the job view names it', async () => {
    const t = newTrace();
    const r = await postJson(
      `${hub.url}/v1/models/${MODEL}/jobs`,
      { input: { image } },
      { traceparent: traceparent(t), prefer: 'wait=30' },
    );
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('succeeded');
    expect(r.body.trace_id).toBe(t.traceId);
    // The same on a later read.
    expect((await pollJob(hub.url, r.body.id)).trace_id).toBe(t.traceId);

    const apiNames = ['POST /v1/models/:model/jobs', 'intake', 'enqueue', `add ${QUEUE}.infer`, 'wait'];
    const workerNames = [
      `process ${QUEUE}`,
      'preprocess',
      'inference',
      `inference batch ${MODEL}`,
      'postprocess',
      'finish',
    ];
    await otlp.until((spans) => {
      const names = new Set(ofTrace(spans, t.traceId).map((s) => s.name));
      return [...apiNames, ...workerNames].every((n) => names.has(n));
    });
    const spans = ofTrace(otlp.spans, t.traceId);
    if (process.env.PRINT_TRACE) console.log(spanTree(otlp.spans, t.traceId));

    for (const n of apiNames) expect(named(spans, n).map((s) => s.service)).toEqual(['modelhub-api']);
    for (const n of workerNames) expect(named(spans, n).map((s) => s.service)).toEqual(['modelhub-worker']);
    // One tree: a single root, the caller's span its parent; every other span's parent is in the trace.
    const ids = new Set(spans.map((s) => s.spanId));
    const roots = spans.filter((s) => !ids.has(s.parentSpanId));
    expect(roots.map((s) => [s.name, s.parentSpanId])).toEqual([['POST /v1/models/:model/jobs', t.parentId]]);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (name: string) => byId.get(named(spans, name)[0].parentSpanId)?.name;
    expect(parentOf('intake')).toBe('POST /v1/models/:model/jobs');
    expect(parentOf('enqueue')).toBe('POST /v1/models/:model/jobs');
    expect(parentOf(`add ${QUEUE}.infer`)).toBe('enqueue');
    expect(parentOf(`process ${QUEUE}`)).toBe(`add ${QUEUE}.infer`);
    for (const n of ['preprocess', 'inference', 'postprocess', 'finish']) expect(parentOf(n)).toBe(`process ${QUEUE}`);
    expect(parentOf(`inference batch ${MODEL}`)).toBe('inference');

    const server = named(spans, 'POST /v1/models/:model/jobs')[0];
    expect(server.kind).toBe(2); // SERVER
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/models/:model/jobs',
      'http.response.status_code': 200,
    });
    const processSpan = named(spans, `process ${QUEUE}`)[0];
    expect(processSpan.kind).toBe(5); // CONSUMER
    expect(processSpan.attributes).toMatchObject({
      'messaging.system': 'bullmq',
      'messaging.destination.name': QUEUE,
      'messaging.operation.type': 'process',
      'messaging.message.id': r.body.id,
      'modelhub.model': MODEL,
      'modelhub.device': 'cpu',
      'modelhub.attempt': 1,
    });
    // Its time in the queue: from the job's creation (the view's created_at) to this attempt's start.
    const { 'modelhub.queue.enqueued_at_ms': enqueued, 'modelhub.queue.started_at_ms': started } =
      processSpan.attributes as Record<string, number>;
    expect(enqueued).toBe(Date.parse(r.body.created_at));
    expect(started).toBe(Date.parse(r.body.started_at));
    expect(processSpan.attributes['modelhub.queue.wait_ms']).toBe(r.body.metrics.queue_ms);
    const batch = named(spans, `inference batch ${MODEL}`)[0];
    expect(batch.attributes).toMatchObject({
      'modelhub.batch.size': 1,
      'modelhub.model': MODEL,
      'modelhub.device': 'cpu',
    });
    expect(batch.links).toEqual([{ traceId: t.traceId, spanId: named(spans, 'inference')[0].spanId }]);
  });

  it('links a batch span to every job it served, each in its own trace', async () => {
    const traces = Array.from({ length: 8 }, newTrace);
    // Held (SIGSTOP) until all eight are queued, so the worker finds them waiting and batches them.
    const worker = hub.workers[0].child;
    worker.kill('SIGSTOP');
    let ids: string[];
    try {
      ids = await Promise.all(
        traces.map(
          async (t) =>
            (
              await postJson(
                `${hub.url}/v1/models/${MODEL}/jobs`,
                { input: { image } },
                { traceparent: traceparent(t) },
              )
            ).body.id as string,
        ),
      );
    } finally {
      worker.kill('SIGCONT');
    }
    const jobs = await Promise.all(ids.map((id) => pollJob(hub.url, id)));
    expect(jobs.map((j) => j.status)).toEqual(Array(8).fill('succeeded'));
    const wanted = new Set(traces.map((t) => t.traceId));
    const inferenceSpans = () => otlp.spans.filter((s) => s.name === 'inference' && wanted.has(s.traceId));
    const linksTo = (spans: ReceivedSpan[]) =>
      spans
        .filter((s) => s.name === `inference batch ${MODEL}`)
        .flatMap((s) => s.links.filter((l) => wanted.has(l.traceId)));
    const spans = await otlp.until((all) => inferenceSpans().length === 8 && linksTo(all).length === 8);
    // Every job's inference span is linked from exactly one batch span.
    expect(
      linksTo(spans)
        .map((l) => l.spanId)
        .sort(),
    ).toEqual(
      inferenceSpans()
        .map((s) => s.spanId)
        .sort(),
    );
    // At least one batch served several jobs, hence several traces; its size is its link count.
    const batches = spans.filter(
      (s) => s.name === `inference batch ${MODEL}` && s.links.some((l) => wanted.has(l.traceId)),
    );
    expect(batches.length).toBeLessThan(8);
    for (const b of batches) expect(b.attributes['modelhub.batch.size']).toBe(b.links.length);
    const shared = batches.find((b) => b.links.length > 1)!;
    expect(new Set(shared.links.map((l) => l.traceId)).size).toBe(shared.links.length);
  });

  it('puts each webhook delivery attempt in its own job’s trace', async () => {
    const [a, b] = [newTrace(), newTrace()];
    const submit = (t: { traceId: string; parentId: string }) =>
      postJson(
        `${hub.url}/v1/models/${MODEL}/jobs`,
        { input: { image }, webhook: hooks.url, webhook_events_filter: ['completed'] },
        { traceparent: traceparent(t) },
      );
    const [ra, rb] = [await submit(a), await submit(b)];
    // The 202 answer names the trace too.
    expect([ra.status, ra.body.trace_id, rb.body.trace_id]).toEqual([202, a.traceId, b.traceId]);
    await hooks.waitFor(2);
    const deliveries = (spans: ReceivedSpan[]) => spans.filter((s) => s.name === 'webhook delivery');
    // A delivery's span ends before its parent, the delivery job's process span, and the two can
    // reach the collector in different exports: wait for both (a lost parent still times out).
    const deliveredWithParent = (all: ReceivedSpan[], job: string) =>
      deliveries(all).some(
        (s) => s.attributes['modelhub.job.id'] === job && all.some((p) => p.spanId === s.parentSpanId),
      );
    const spans = await otlp.until(
      (all) => deliveredWithParent(all, ra.body.id as string) && deliveredWithParent(all, rb.body.id as string),
    );
    for (const [job, t] of [
      [ra.body.id as string, a],
      [rb.body.id as string, b],
    ] as const) {
      const d = deliveries(spans).filter((s) => s.attributes['modelhub.job.id'] === job);
      // On a mismatch, the trace the delivery went to tells where the context was lost.
      for (const x of d) if (x.traceId !== t.traceId) console.log(`delivery of ${job}:\n${spanTree(spans, x.traceId)}`);
      expect(d.map((s) => s.traceId)).toEqual([t.traceId]);
      expect(d[0].kind).toBe(3); // CLIENT
      expect(d[0].attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 204,
        'http.request.resend_count': 0,
        'modelhub.webhook.event': 'completed',
      });
      // Its parent is the delivery queue's process span, in the same trace.
      const parent = spans.find((s) => s.spanId === d[0].parentSpanId)!;
      expect(parent.name).toBe(`process ${WEBHOOK_QUEUE}`);
      expect(parent.traceId).toBe(t.traceId);
    }
  });

  it('keeps each coalesced predict call in its own trace, linked to the entry it rode in', async () => {
    const [a, b, c] = [newTrace(), newTrace(), newTrace()];
    const call = (t: { traceId: string; parentId: string }) =>
      postJson(`${hub.url}/v1/models/${MODEL}/predict`, { image }, { traceparent: traceparent(t) });
    const answers = await whileWorkerHeld(hub.workers[0], async () => {
      // The first call is in flight (held): the next two wait in the window and share an entry.
      const first = call(a);
      await new Promise((r) => setTimeout(r, 100));
      const rest = [call(b), call(c)];
      await new Promise((r) => setTimeout(r, 600));
      return { first, rest };
    });
    const [rb, rc] = await Promise.all(answers.rest);
    await answers.first;
    expect([rb.body.metrics, rc.body.metrics]).toEqual([{ entry_items: 2 }, { entry_items: 2 }]);
    const items = (spans: ReceivedSpan[]) => named(spans, 'predict item');
    const spans = await otlp.until((all) =>
      [b, c].every(
        (t) =>
          items(ofTrace(all, t.traceId)).length === 1 &&
          named(ofTrace(all, t.traceId), 'inference').length === 1 &&
          named(ofTrace(all, t.traceId), 'POST /v1/models/:model/predict').length === 1,
      ),
    );
    for (const [t, r] of [
      [b, rb],
      [c, rc],
    ] as const) {
      const [item] = items(ofTrace(spans, t.traceId));
      expect(item.attributes['modelhub.job.id']).toBe(r.body.request_id);
      // Its parent is the call's own request span; it links to the entry's process span.
      expect(spans.find((s) => s.spanId === item.parentSpanId)?.name).toBe('POST /v1/models/:model/predict');
      const entry = spans.find((s) => s.spanId === item.links[0]?.spanId);
      expect(entry?.name).toBe(`process ${predictQueueName(MODEL)}`);
      // The item's own work (its inference) is in its own trace, under its item span.
      const inference = named(ofTrace(spans, t.traceId), 'inference')[0];
      expect(ofTrace(spans, t.traceId).some((s) => s.spanId === inference.parentSpanId)).toBe(true);
    }
  });

  it('carries a batch upload’s trace to each of its items (through its chunk)', async () => {
    const t = newTrace();
    const upload = await postJsonl(
      `${hub.url}/v1/models/${MODEL}/batches`,
      [0, 1, 2].map(() => JSON.stringify({ image })),
      { traceparent: traceparent(t) },
    );
    expect(upload.status).toBe(202);
    await pollBatch(hub.url, upload.body.id);
    // The chunk's process span ends after its items' spans, and may be exported after them.
    const spans = await otlp.until(
      (all) =>
        named(ofTrace(all, t.traceId), 'postprocess').length === 3 &&
        named(ofTrace(all, t.traceId), 'inference').length === 3 &&
        named(ofTrace(all, t.traceId), `process ${bulkQueueName(MODEL)}`).length > 0,
    );
    const own = ofTrace(spans, t.traceId);
    const byId = new Map(own.map((s) => [s.spanId, s]));
    // Each item's spans hang under its chunk's process span, which continues the upload's request.
    for (const n of ['preprocess', 'inference', 'postprocess'])
      for (const s of named(own, n)) expect(byId.get(s.parentSpanId)?.name).toBe(`process ${bulkQueueName(MODEL)}`);
    const roots = own.filter((s) => !byId.has(s.parentSpanId));
    expect(roots.map((s) => [s.name, s.parentSpanId])).toEqual([['POST /v1/models/:model/batches', t.parentId]]);
  });

  it('puts the active trace and span ids on log lines', async () => {
    const fields = await inSpan('log-check', {}, (span) => {
      const sc = span!.spanContext();
      expect(traceLogFields()).toEqual({ trace_id: sc.traceId, span_id: sc.spanId, trace_flags: '01' });
      return traceLogFields();
    });
    expect(fields.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(traceLogFields()).toEqual({});
  });

  it('exports http/protobuf when OTEL_EXPORTER_OTLP_PROTOCOL says so', async () => {
    const before = otlp.requests.length;
    const script = `
      const { startTracing, inSpan, stopTracing } = await import(${JSON.stringify(path.join(REPO_ROOT, 'shared/tracing.ts'))});
      await startTracing('webhooks');
      await inSpan('protobuf-check', {}, async () => undefined);
      await stopTracing();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: {
        ...process.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      },
      stdio: 'inherit',
    });
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
    const proto = otlp.requests.slice(before).filter((q) => q.contentType === 'application/x-protobuf');
    expect(proto).toHaveLength(1);
    // Protobuf strings are their UTF-8 bytes: the span's name and the service's are in the body.
    expect(proto[0].body.includes(Buffer.from('protobuf-check'))).toBe(true);
    expect(proto[0].body.includes(Buffer.from('modelhub-webhooks'))).toBe(true);
  });
});
