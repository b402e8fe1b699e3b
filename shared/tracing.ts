/**
 * OpenTelemetry traces (docs: deploy/README.md "Traces"). Off unless the environment asks for
 * them: OTEL_TRACES_EXPORTER names an exporter other than `none`, or OTEL_EXPORTER_OTLP_ENDPOINT
 * (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; OTEL_SDK_DISABLED=true wins over both. When off,
 * the SDK is never imported, BullMQ gets no telemetry (its calls run untraced) and every helper
 * here calls straight through: only @opentelemetry/api's no-op objects are touched.
 *
 * When on, @opentelemetry/sdk-node reads the standard OTEL_* variables itself (exporter,
 * OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or http/json, sampler, batch processor, resource), and
 * `bullmq-otel` carries each job's W3C trace context through Redis in the job's options, so the
 * worker's `process` span continues the API's trace.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type TimeInput,
} from '@opentelemetry/api';
import type { Telemetry } from 'bullmq';

export { SpanKind };
export type { Attributes, Context, Span, SpanContext };

/** Which process this is: its default service.name is `modelhub-<role>` (OTEL_SERVICE_NAME overrides). */
export type ServiceRole = 'api' | 'worker' | 'webhooks';

interface Started {
  sdk: { shutdown(): Promise<void> };
  telemetry: Telemetry;
}

let started: Started | null = null;

/** Whether `env` turns tracing on (see the header). */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.length > 0) return exporters.some((e) => e !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts the SDK when process.env asks for traces (once per process; later calls return the same
 * answer). Call it before any BullMQ Queue or Worker is made: they take `bullTelemetry()` when built.
 */
export async function startTracing(role: ServiceRole): Promise<boolean> {
  if (started) return true;
  if (!tracingWanted(process.env)) return false;
  const [{ NodeSDK }, { BullMQOtel }] = await Promise.all([import('@opentelemetry/sdk-node'), import('bullmq-otel')]);
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || `modelhub-${role}`,
    // Traces only: metrics stay with Prometheus (/metrics), logs with pino (which carries trace ids).
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  started = { sdk, telemetry: new BullMQOtel({ tracerName: 'bullmq' }) };
  return true;
}

/** Exports what is buffered and stops the SDK (a process about to exit). Never rejects. */
export async function stopTracing(): Promise<void> {
  const s = started;
  started = null;
  await s?.sdk.shutdown().catch(() => undefined);
}

export function tracingOn(): boolean {
  return started !== null;
}

/** BullMQ's `telemetry` option: bullmq-otel when tracing is on, else undefined (BullMQ runs untraced). */
export function bullTelemetry(): Telemetry | undefined {
  return started?.telemetry;
}

const tracer = trace.getTracer('modelhub');

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  startTime?: TimeInput;
  /** The parent; default: the active context. */
  parent?: Context;
  links?: { context: SpanContext; attributes?: Attributes }[];
}

/**
 * Runs `fn` inside a new active span (ended when `fn` settles; an error is recorded on it). When
 * tracing is off, `fn` runs as it is, with no span.
 */
export async function inSpan<T>(name: string, options: SpanOptions, fn: (span?: Span) => Promise<T> | T): Promise<T> {
  if (!started) return fn();
  const { parent = context.active(), ...rest } = options;
  const span = tracer.startSpan(name, rest, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** A span the caller ends; undefined when tracing is off. */
export function startSpan(name: string, options: SpanOptions = {}): Span | undefined {
  if (!started) return undefined;
  const { parent, ...rest } = options;
  return tracer.startSpan(name, rest, parent ?? context.active());
}

/** Marks a span failed with `err` (recorded as an exception event). */
export function failSpan(span: Span | undefined, err: unknown): void {
  if (!span) return;
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** The active span's trace id when tracing is on (what a job's view shows), else undefined. */
export function activeTraceId(): string | undefined {
  if (!started) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

/**
 * The active span's W3C traceparent, carried by a coalesced predict call inside its shared entry
 * (its own trace, not the entry's); undefined when tracing is off.
 */
export function activeTraceparent(): string | undefined {
  if (!started) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
}

/** A context whose remote parent is `traceparent` (a coalesced item's own trace); undefined when off or malformed. */
export function contextOfTraceparent(traceparent: string | undefined): Context | undefined {
  if (!started || !traceparent) return undefined;
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (!m) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1],
    spanId: m[2],
    traceFlags: Number.parseInt(m[3], 16),
    isRemote: true,
  });
}

/** Sets attributes on the active span (the BullMQ `process` span inside a processor). */
export function annotateActiveSpan(attributes: Attributes): void {
  if (started) trace.getActiveSpan()?.setAttributes(attributes);
}

/** The active context, to carry into work that runs later elsewhere (a batch); undefined when off. */
export function activeContext(): Context | undefined {
  return started ? context.active() : undefined;
}

/** Runs `fn` with `ctx` active (as it is when `ctx` is undefined: tracing off). */
export function withContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn();
}

/** `ctx` with `span` as its span (a parent for spans started later). */
export function contextWithSpan(ctx: Context, span: Span): Context {
  return trace.setSpan(ctx, span);
}

/** The span context of `ctx`'s span (a link target). */
export function spanContextOf(ctx: Context | undefined): SpanContext | undefined {
  return ctx ? trace.getSpanContext(ctx) : undefined;
}

/**
 * pino's mixin: every log line written while a span is active carries its trace_id and span_id
 * (the names the OpenTelemetry log data model and most log shippers use).
 */
export function traceLogFields(): Record<string, string> {
  if (!started) return {};
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}` };
}

/** Attribute names of the semantic conventions used here (messaging ones are still "development"). */
export const ATTR = {
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  httpResendCount: 'http.request.resend_count',
  urlFull: 'url.full',
  urlPath: 'url.path',
  urlScheme: 'url.scheme',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  clientAddress: 'client.address',
  userAgent: 'user_agent.original',
  networkProtocolVersion: 'network.protocol.version',
  messagingSystem: 'messaging.system',
  messagingDestination: 'messaging.destination.name',
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  messagingMessageId: 'messaging.message.id',
  messagingBatchCount: 'messaging.batch.message_count',
  model: 'modelhub.model',
  device: 'modelhub.device',
  batchSize: 'modelhub.batch.size',
  jobId: 'modelhub.job.id',
  queueWaitMs: 'modelhub.queue.wait_ms',
  /** When the job was enqueued and when this attempt started, epoch ms: its time in the queue. */
  queueEnqueuedAt: 'modelhub.queue.enqueued_at_ms',
  queueStartedAt: 'modelhub.queue.started_at_ms',
  tenant: 'modelhub.tenant',
} as const;
