/**
 * An OTLP/HTTP trace receiver on loopback (POST /v1/traces), for tests: keeps every request's
 * raw body and content type, and the spans of OTLP/JSON requests (http/json), flattened.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

export interface OtlpRequest {
  contentType: string;
  body: Buffer;
}

export interface OtlpReceiver {
  /** The base URL: OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces). */
  url: string;
  requests: OtlpRequest[];
  spans: ReceivedSpan[];
  /** Resolves with the spans once `test(spans)` holds (checked on each request), or rejects after `timeoutMs`. */
  until(test: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}

/** OTLP/JSON ids are hex; an exporter that sends base64 is read too. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function valueOf(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return v;
}

const attrs = (list: KeyValue[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]));

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: OtlpRequest[] = [];
  const spans: ReceivedSpan[] = [];
  let notify = () => undefined as void;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] ?? '';
      requests.push({ contentType, body });
      if (contentType.startsWith('application/json')) {
        const doc = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: {
            resource?: { attributes?: KeyValue[] };
            scopeSpans?: {
              spans?: {
                traceId: string;
                spanId: string;
                parentSpanId?: string;
                name: string;
                kind: number;
                startTimeUnixNano: string;
                endTimeUnixNano: string;
                attributes?: KeyValue[];
                links?: { traceId: string; spanId: string }[];
              }[];
            }[];
          }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(attrs(rs.resource?.attributes)['service.name']);
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                service,
                traceId: hexId(s.traceId),
                spanId: hexId(s.spanId),
                parentSpanId: hexId(s.parentSpanId),
                name: s.name,
                kind: s.kind,
                startNs: BigInt(s.startTimeUnixNano),
                endNs: BigInt(s.endTimeUnixNano),
                attributes: attrs(s.attributes),
                links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId), spanId: hexId(l.spanId) })),
              });
        }
      }
      res.statusCode = 200;
      res.setHeader('content-type', contentType.startsWith('application/json') ? 'application/json' : contentType);
      res.end(contentType.startsWith('application/json') ? '{}' : undefined);
      notify();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans,
    until(test, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!test(spans)) return;
          clearTimeout(timer);
          notify = () => undefined;
          resolve(spans);
        };
        const timer = setTimeout(() => {
          notify = () => undefined;
          reject(new Error(`spans not received within ${timeoutMs} ms; got: ${spans.map((s) => s.name).join(', ')}`));
        }, timeoutMs);
        notify = check;
        check();
      });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The spans of one trace as an indented tree (children by start time), links shown; for reports. */
export function spanTree(spans: ReceivedSpan[], traceId: string): string {
  const own = spans.filter((s) => s.traceId === traceId);
  const ids = new Set(own.map((s) => s.spanId));
  const roots = own.filter((s) => !ids.has(s.parentSpanId));
  const t0 = own.reduce((m, s) => (s.startNs < m ? s.startNs : m), own[0]?.startNs ?? 0n);
  const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(1);
  const lines: string[] = [`trace ${traceId}`];
  const walk = (s: ReceivedSpan, depth: number) => {
    const links = s.links.length
      ? `  links: ${s.links.map((l) => `${l.traceId.slice(0, 8)}…/${l.spanId}`).join(', ')}`
      : '';
    lines.push(
      `${'  '.repeat(depth + 1)}${s.name}  [${s.service}]  +${ms(s.startNs - t0)} ms, ${ms(s.endNs - s.startNs)} ms${links}`,
    );
    own
      .filter((c) => c.parentSpanId === s.spanId)
      .sort((a, b) => (a.startNs < b.startNs ? -1 : 1))
      .forEach((c) => walk(c, depth + 1));
  };
  roots.sort((a, b) => (a.startNs < b.startNs ? -1 : 1)).forEach((r) => walk(r, 0));
  return lines.join('\n');
}
