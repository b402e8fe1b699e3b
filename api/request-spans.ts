/**
 * The API's server spans (only installed when tracing is on, shared/tracing.ts): each request
 * continues the caller's W3C `traceparent` (extracted by the SDK's propagator) or starts a trace,
 * and everything the request does (validation, enqueue, the wait) runs inside its span. Written
 * here rather than with the http instrumentation: that one needs a loader hook to patch ESM
 * imports, and the route template is known here (http.route) anyway.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ATTR, inSpan, tracingOn } from '../shared/tracing.js';

/** `label(req, res)`: the request's route template (the metrics' route label). */
export function requestSpans(label: (req: Request, res: Response) => string): RequestHandler {
  const tracer = trace.getTracer('modelhub');
  return (req: Request, res: Response, next: NextFunction) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const arrivedAt = Date.now();
    const span = tracer.startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        startTime: arrivedAt,
        attributes: {
          [ATTR.httpMethod]: req.method,
          [ATTR.urlPath]: req.path,
          [ATTR.urlScheme]: req.protocol,
          [ATTR.networkProtocolVersion]: req.httpVersion,
          [ATTR.clientAddress]: req.socket.remoteAddress,
          [ATTR.serverPort]: req.socket.localPort,
          [ATTR.userAgent]: req.get('user-agent'),
        },
      },
      parent,
    );
    res.locals.arrivedAt = arrivedAt;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = label(req, res);
      span.updateName(`${req.method} ${route}`);
      span.setAttribute(ATTR.httpRoute, route);
      span.setAttribute(ATTR.httpStatus, res.statusCode);
      if (req.tenant) span.setAttribute(ATTR.tenant, req.tenant);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}

/**
 * A job's intake and validation, one span: from the request's arrival (its body read and parsed
 * by the middlewares before the route) until `validate` (input validation, the image's header)
 * settles. One span, not two: every span per job is paid for at full load (docs/performance.md).
 */
export function traceIntake<T>(res: Response, model: string, validate: () => Promise<T>): Promise<T> {
  if (!tracingOn()) return validate();
  const startTime = typeof res.locals.arrivedAt === 'number' ? res.locals.arrivedAt : undefined;
  return inSpan('intake', { attributes: { [ATTR.model]: model }, startTime }, validate);
}
