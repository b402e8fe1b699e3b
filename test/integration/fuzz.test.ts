/**
 * Fuzz: 2,400 malformed requests (random bytes, truncated base64, giant dimensions, wrong
 * types, deep JSON, bad options, charsets but UTF-8, compressed and chunked bodies). No process dies; every answer is a spec error with a 4xx.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../models/tools/onnx-builder.js';
import { getJson, postJson, startHub, type Hub, type WorkerProcess } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

let hub: Hub<WorkerProcess>;
beforeAll(async () => {
  hub = await startHub({
    workerProcesses: true,
    name: 'fuzz',
    models: 'resnet50,bert-base-chinese',
    env: { MAX_BODY_BYTES: '262144', MAX_IMAGE_PIXELS: '4000000' },
  });
});
afterAll(async () => hub?.stop());

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A well-formed PNG header claiming width × height, with no real pixel data. */
function giantPngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

interface Case {
  kind: string;
  path: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  /** Sent without a Content-Length (Transfer-Encoding: chunked), in pieces. */
  chunked?: boolean;
}

function makeCases(validPng: string, n: number): Case[] {
  const rnd = seededRandom(2026);
  const int = (k: number) => Math.floor(rnd() * k);
  const pick = <T>(xs: T[]) => xs[int(xs.length)];
  const jobs = '/v1/models/resnet50/jobs';
  const bert = '/v1/models/bert-base-chinese/predict';
  const wrongValues = [null, 0, -1, 3.5, true, false, [], {}, [1, 2], { a: 1 }, '', 'x'.repeat(100)];
  const generators: ((i: number) => Case)[] = [
    () => ({
      kind: 'random bytes',
      path: jobs,
      body: Buffer.from(Array.from({ length: 1 + int(400) }, () => int(256))).toString('latin1'),
    }),
    () => ({
      kind: 'truncated json',
      path: jobs,
      body: JSON.stringify({ input: { image: validPng } }).slice(0, 1 + int(60)),
    }),
    () => ({
      kind: 'truncated base64',
      path: jobs,
      body: JSON.stringify({ input: { image: validPng.slice(0, 1 + int(validPng.length - 8)) } }),
    }),
    () => ({
      kind: 'base64 garbage',
      path: jobs,
      body: JSON.stringify({
        input: { image: Array.from({ length: 4 + int(200) }, () => String.fromCharCode(33 + int(90))).join('') },
      }),
    }),
    () => ({
      kind: 'giant dimensions',
      path: jobs,
      body: JSON.stringify({ input: { image: b64(giantPngHeader(5000 + int(95000), 5000 + int(95000))) } }),
    }),
    () => ({ kind: 'wrong image type', path: jobs, body: JSON.stringify({ input: { image: pick(wrongValues) } }) }),
    () => ({
      kind: 'wrong input type',
      path: jobs,
      body: JSON.stringify({ input: pick([null, 1, 'str', [validPng], true]) }),
    }),
    () => ({ kind: 'top-level not an object', path: jobs, body: JSON.stringify(pick([null, 1, 'str', [1, 2], true])) }),
    (i) => {
      const depth = 33 + int(3000);
      return {
        kind: 'deep json',
        path: jobs,
        body: `{"input":{"image":${'['.repeat(depth)}${i % 2 ? ']'.repeat(depth) : ''}}}`,
      };
    },
    () => {
      const depth = 40 + int(200);
      return {
        kind: 'deep objects',
        path: jobs,
        body: `{"input":{"image":"x","n":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`,
      };
    },
    () => ({
      kind: 'bad options',
      path: jobs,
      body: JSON.stringify({
        input: { image: validPng },
        priority: pick([0, 11, 2.5, 'high', null]),
        timeout_s: pick([-1, 0, 'soon', undefined]),
      }),
    }),
    () => ({
      kind: 'unknown fields',
      path: jobs,
      body: JSON.stringify({ input: { image: validPng, [`f${int(1e6)}`]: 1 } }),
    }),
    () => ({
      kind: 'bad webhook',
      path: jobs,
      body: JSON.stringify({
        input: { image: validPng },
        webhook: pick(['ftp://x', 'not a url', 'http://127.0.0.1/', 42]),
      }),
    }),
    () => ({
      kind: 'oversized body',
      path: jobs,
      body: JSON.stringify({ input: { image: 'A'.repeat(262_144 + int(10_000)) } }),
    }),
    () => ({
      kind: 'bert wrong types',
      path: bert,
      body: JSON.stringify({ first_sequence: pick([1, null, [], {}, '']), sequence_length: 16 }),
    }),
    () => ({
      kind: 'bert bad length',
      path: bert,
      body: JSON.stringify({ first_sequence: 'ok', sequence_length: pick([0, -5, 513, 1e9, 2.5, '128', null]) }),
    }),
    () => ({
      kind: 'bert bad schema',
      path: bert,
      body: JSON.stringify({
        first_sequence: 'ok',
        output_schema: pick(['', 'pool_output,', 'everything', 'pool_output,nope', 7]),
      }),
    }),
    () => ({
      kind: 'unknown model',
      path: `/v1/models/m${int(1e6)}/jobs`,
      body: JSON.stringify({ input: { image: validPng } }),
    }),
    () => ({
      kind: 'bad idempotency key',
      path: jobs,
      body: JSON.stringify({ input: { image: validPng } }),
      headers: { 'Idempotency-Key': 'k'.repeat(256 + int(100)) },
    }),
    () => {
      const charset = pick([
        'utf-16le',
        'utf-16be',
        'utf-16',
        'utf-32',
        'latin1',
        'iso-8859-1',
        'ascii',
        '',
        'x-unknown',
      ]);
      const text = JSON.stringify({ input: { image: pick([validPng, 'Ģ', 'x']) } });
      return {
        kind: `charset ${charset}`,
        path: pick([jobs, bert, '/v1/models/resnet50/batches']),
        body: charset.startsWith('utf-16') ? Buffer.from(text, 'utf16le') : Buffer.from(text, 'latin1'),
        headers: { 'content-type': `application/json; charset=${charset}` },
      };
    },
    () => {
      const encoding = pick(['gzip', 'deflate', 'br', 'x-gzip', 'compress', 'gzip, identity', 'zstd']);
      const json = Buffer.from(JSON.stringify({ input: { image: validPng } }));
      return {
        kind: `encoding ${encoding}`,
        path: pick([jobs, '/v1/models/resnet50/batches']),
        body: pick([zlib.gzipSync(json), zlib.deflateSync(json), json, Buffer.from([0x1f, 0x8b, 1, 2, 3])]),
        headers: { 'content-encoding': encoding },
      };
    },
    () => ({
      kind: 'chunked',
      path: pick([jobs, bert, '/v1/models/resnet50/batches']),
      body: pick([
        JSON.stringify({ input: { image: validPng.slice(0, 1 + int(validPng.length - 8)) } }),
        `{"input":${'['.repeat(40 + int(1000))}`,
        Buffer.from(Array.from({ length: 1 + int(2000) }, () => int(256))),
        'A'.repeat(262_144 + int(10_000)),
      ]),
      chunked: true,
    }),
    () => ({
      kind: 'chunked jsonl',
      path: '/v1/models/resnet50/batches',
      // Refused whole (a bad line alone fails only its item, and the batch is accepted).
      body: pick(['{"image":"AAAA"}\n', `${'['.repeat(5000)}\n`, Buffer.from([0xff, 0xfe, 0x0a, 0x00])]),
      headers: pick([
        { 'content-type': 'application/x-ndjson; charset=utf-16le' },
        { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
      ]),
      chunked: true,
    }),
  ];
  return Array.from({ length: n }, (_, i) => generators[i % generators.length](i));
}

describe('fuzzing the ingress', () => {
  it('answers 2,400 malformed requests with 4xx spec errors; no process dies', async () => {
    const validPng = b64(await solidImage(32, 32, [1, 2, 3]));
    const cases = makeCases(validPng, 2400);
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < cases.length) {
          const c = cases[next++];
          const bytes = typeof c.body === 'string' ? Buffer.from(c.body) : c.body;
          const r = await fetch(`${hub.url}${c.path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(c.headers ?? {}) },
            ...(c.chunked
              ? {
                  // A stream has no length: fetch sends it chunked, in pieces of up to 4 KiB.
                  body: new ReadableStream({
                    start(controller) {
                      for (let at = 0; at < bytes.length; at += 4096) controller.enqueue(bytes.subarray(at, at + 4096));
                      controller.close();
                    },
                  }),
                  duplex: 'half',
                }
              : { body: bytes }),
          } as RequestInit);
          const text = await r.text();
          let body: any = null;
          try {
            body = JSON.parse(text);
          } catch {
            // reported below
          }
          const ok =
            r.status >= 400 &&
            r.status < 500 &&
            body &&
            body.success === false &&
            Number.isInteger(body.error_code) &&
            body.error_code > 0 &&
            typeof body.error_msg === 'string' &&
            body.error_msg.length > 0;
          if (!ok) failures.push(`${c.kind}: ${r.status} ${text.slice(0, 200)}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(hub.workers[0].child.exitCode).toBeNull();
    expect((await getJson(`${hub.url}/healthz`)).status).toBe(200);
    const good = await postJson(`${hub.url}/v1/models/resnet50/predict`, { image: validPng });
    expect(good.body.success).toBe(true);
  });
});
