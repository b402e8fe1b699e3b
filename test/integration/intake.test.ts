/**
 * The door charges what it reads (issue 28): compressed bodies are refused before they are
 * inflated, a chunked body is counted as it arrives (413 at the limit, charged in the tenant's
 * byte bucket), JSON in any charset but UTF-8 is refused with 415, never 500, and an image whose
 * size is not in its first 64 KiB is refused and never queued.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL, startHub, type Hub } from '../helpers/hub.js';
import { craftedJpeg } from '../helpers/crafted-jpeg.js';
import { b64, solidImage } from '../helpers/images.js';

const A = 'intake-a-key-0123456789';
const B = 'intake-b-key-0123456789';
const BODY_LIMIT = 20 * 1024 * 1024;

interface Answer {
  status: number;
  body: any;
}

/** A raw request: `pieces` are written one by one (no Content-Length: chunked) unless `length` is set. */
function send(
  hub: Hub,
  path: string,
  key: string,
  headers: Record<string, string>,
  pieces: Iterable<Buffer>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${hub.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null });
      });
    });
    // Writing may fail once the server has answered and closed: the answer is what counts.
    req.on('error', (err) => setTimeout(() => reject(err), 2000));
    void (async () => {
      for (const piece of pieces) {
        if (req.destroyed) return;
        if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(() => undefined);
  });
}

function* repeat(piece: Buffer, times: number): Generator<Buffer> {
  for (let i = 0; i < times; i++) yield piece;
}

function encode16(text: string, order: 'le' | 'be'): Buffer {
  const le = Buffer.from(text, 'utf16le');
  return order === 'le' ? le : le.swap16();
}

let hub: Hub;
beforeAll(async () => {
  hub = await startHub({
    name: 'intake',
    workers: 0,
    env: {
      MODELHUB_API_KEYS: `${A}:a,${B}:b`,
      MAX_BODY_BYTES: String(BODY_LIMIT),
      TENANT_RATE_RPS: '0',
      TENANT_RATE_BYTES_PER_S: String(100 * 1024),
    },
  });
}, 60_000);
afterAll(async () => hub?.stop());

describe('request bodies at the door', () => {
  it('refuses a chunked body past the limit with 413 and charges its bytes to the tenant', async () => {
    // 25 MB sent chunked: no Content-Length to charge up front.
    const piece = Buffer.alloc(64 * 1024, 0x41);
    const big = send(
      hub,
      '/v1/models/resnet50/jobs',
      A,
      { 'transfer-encoding': 'chunked' },
      (function* () {
        yield Buffer.from('{"input":{"image":"');
        yield* repeat(piece, 400);
        yield Buffer.from('"}}');
      })(),
    );
    expect(await big).toMatchObject({ status: 413, body: { success: false, error_code: 1005 } });
    // The ~20 MB read used A's byte burst: A's next body waits; B's is untouched.
    const small = Buffer.from(JSON.stringify({ input: { image: 'A'.repeat(1024 * 1024) } }));
    const next = (key: string) =>
      send(hub, '/v1/models/resnet50/jobs', key, { 'content-length': String(small.length) }, [small]);
    const a = await next(A);
    expect(a).toMatchObject({ status: 429, body: { success: false, error_code: 1403 } });
    const b = await next(B);
    expect(b.status).not.toBe(429);
  }, 60_000);

  it('refuses UTF-16 JSON, shallow and 400,000 deep, with 415 (never 500)', async () => {
    const shallow = JSON.stringify({ input: { image: 'Ģ' } });
    const deep = `{"input":{"image":"Ģ","x":${'['.repeat(400_000)}${']'.repeat(400_000)}}}`;
    const answers: Answer[] = [];
    for (const [charset, order] of [
      ['utf-16le', 'le'],
      ['utf-16be', 'be'],
      ['UTF-16', 'le'],
    ] as const) {
      for (const text of [shallow, deep]) {
        const bytes = encode16(text, order);
        answers.push(
          await send(
            hub,
            '/v1/models/resnet50/jobs',
            B,
            { 'content-type': `application/json; charset=${charset}`, 'content-length': String(bytes.length) },
            [bytes],
          ),
        );
      }
    }
    // A batch in UTF-16 too.
    const batch = encode16(JSON.stringify({ inputs: [{ image: 'Ģ' }] }), 'le');
    answers.push(
      await send(
        hub,
        '/v1/models/resnet50/batches',
        B,
        { 'content-type': 'application/json; charset=utf-16le', 'content-length': String(batch.length) },
        [batch],
      ),
    );
    for (const a of answers)
      expect(a).toMatchObject({ status: 415, body: { success: false, error_code: 1010, error_msg: /UTF-8/ } });
  }, 60_000);

  it('refuses compressed bodies (jobs and batch uploads) with 415 before inflating them', async () => {
    const json = Buffer.from(JSON.stringify({ input: { image: 'A'.repeat(1000) } }));
    const answers: Answer[] = [];
    for (const [encoding, bytes] of [
      ['gzip', zlib.gzipSync(json)],
      ['deflate', zlib.deflateSync(json)],
      ['br', zlib.brotliCompressSync(json)],
    ] as const)
      answers.push(
        await send(
          hub,
          '/v1/models/resnet50/jobs',
          B,
          { 'content-encoding': encoding, 'content-length': String(bytes.length) },
          [bytes],
        ),
      );
    const jsonl = zlib.gzipSync(Buffer.from('{"image":"AAAA"}\n'));
    answers.push(
      await send(
        hub,
        '/v1/models/resnet50/batches',
        B,
        { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip', 'content-length': String(jsonl.length) },
        [jsonl],
      ),
    );
    for (const a of answers)
      expect(a).toMatchObject({
        status: 415,
        body: { success: false, error_code: 1010, error_msg: /Content-Encoding/ },
      });
  }, 60_000);

  it('100 parallel gzip bodies that inflate to 19 MB each: refused, memory bounded, /healthz answers', async () => {
    const bomb = zlib.gzipSync(Buffer.from(`{"input":{"image":"${'A'.repeat(19 * 1024 * 1024)}"}}`), { level: 9 });
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    let sending = true;
    const health: number[] = [];
    const probe = (async () => {
      while (sending) {
        health.push((await fetch(`${hub.url}/healthz`)).status);
        peak = Math.max(peak, process.memoryUsage().rss);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        send(
          hub,
          '/v1/models/resnet50/jobs',
          i % 2 ? A : B,
          { 'content-encoding': 'gzip', 'content-length': String(bomb.length) },
          [bomb],
        ),
      ),
    );
    sending = false;
    await probe;
    peak = Math.max(peak, process.memoryUsage().rss);
    for (const a of answers) {
      expect([413, 415, 429]).toContain(a.status);
      expect(a.body).toMatchObject({ success: false, error_code: expect.any(Number) });
    }
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((s) => s === 200)).toBe(true);
    console.log(`gzip test: rss growth ${((peak - rssBefore) / 1024 ** 2).toFixed(1)} MB`);
    expect(peak - rssBefore).toBeLessThan(300 * 1024 * 1024);
  }, 120_000);

  it('refuses the crafted JPEG (frame header after 4 MiB of filler) with 415 and queues nothing', async () => {
    const crafted = craftedJpeg(4 * 1024 * 1024).toString('base64');
    const answers: Answer[] = [];
    for (const path of ['/v1/models/resnet50/jobs', '/v1/models/resnet50/predict']) {
      const body = Buffer.from(
        JSON.stringify(path.endsWith('jobs') ? { input: { image: crafted } } : { image: crafted }),
      );
      answers.push(await send(hub, path, B, { 'content-length': String(body.length) }, [body]));
    }
    for (const a of answers)
      expect(a).toMatchObject({
        status: 415,
        body: { success: false, error_code: 1007, error_msg: /first 65536 bytes/ },
      });
    const connection = new Redis(REDIS_URL);
    const queue = new Queue('{model.resnet50}', { connection, prefix: hub.prefix });
    const counts = await queue.getJobCounts();
    await queue.close();
    connection.disconnect();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  }, 60_000);

  it('an expired queued job reads failed; a cancel (409) or a delete gives its quota back', async () => {
    const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
      const r = await fetch(`${hub.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${B}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    };
    const usage = async () => (await call('GET', '/v1/usage')).body.models.resnet50;
    const image = b64(await solidImage(32, 32, [9, 9, 9]));
    // No worker serves the model: the jobs stay queued past their deadline.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await call('POST', '/v1/models/resnet50/jobs', { input: { image }, timeout_s: 1 });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    expect((await usage()).waiting.used).toBe(2);
    expect((await usage()).stored_bytes.used).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1300));
    expect((await call('GET', `/v1/jobs/${ids[0]}`)).body.status).toBe('failed');

    // It has failed already: the cancel answers 409 like for any finished job, the job keeps
    // reading failed (never canceled after reading failed), and its quota is given back.
    expect(await call('POST', `/v1/jobs/${ids[0]}/cancel`)).toMatchObject({
      status: 409,
      body: { success: false, error_msg: expect.stringContaining('deadline passed') },
    });
    expect((await call('GET', `/v1/jobs/${ids[0]}`)).body).toMatchObject({
      status: 'failed',
      output: { error_code: 2002 },
    });
    expect((await usage()).waiting.used).toBe(1);
    expect(await call('DELETE', `/v1/jobs/${ids[1]}`)).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await call('DELETE', `/v1/jobs/${ids[0]}`)).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await usage()).toMatchObject({ waiting: { used: 0 }, stored_bytes: { used: 0 } });
    expect((await call('GET', `/v1/jobs/${ids[1]}`)).status).toBe(404);
  }, 60_000);
});
