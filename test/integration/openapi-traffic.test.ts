/**
 * The OpenAPI document matches the traffic: requests go through Stoplight Prism (a pinned dev
 * dependency, run offline) in front of a hub with a worker, as a validating proxy with `--errors`.
 * - `strict` checks requests and answers: a request the document does not allow is refused by
 *   Prism (422, problem+json) before the hub sees it; an answer it does not describe becomes
 *   Prism's error instead of the hub's answer.
 * - `answers` checks answers only (`--validate-request false`), so the hub's answers to requests
 *   the document refuses (unknown fields, values out of range, bad JSON) are held to it too.
 * The README's curl examples run as written (a bash `curl` wrapper records each call) through
 * `strict`; then the integration suite's kinds of requests, valid and refused, for all five tasks.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { freePort, startHub, type Hub } from '../helpers/hub.js';
import { BatchResultLineSchema } from '../../api/schemas.js';
import { TASK_OUTPUTS } from '../../shared/task-outputs.js';

const run = promisify(execFile);
const PRISM = path.join(REPO_ROOT, 'node_modules/@stoplight/prism-cli/dist/index.js');
const MODELS = [
  'mobilenetv2',
  'text-direction',
  'yolox-nano',
  'text-detection',
  'deeplabv3-mobilenetv2',
  'text-segmentation',
  'text-instances',
  'bert-base-chinese',
  'resnet50',
];
const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789ab' };

let hub: Hub;
let dir: string;
const proxies: ChildProcess[] = [];
let strict: string;
let answers: string;

async function startPrism(doc: string, upstream: string, extra: string[]): Promise<string> {
  const port = await freePort();
  let log = '';
  const child = spawn(
    process.execPath,
    [PRISM, 'proxy', doc, upstream, '--errors', '-p', String(port), '-h', '127.0.0.1', ...extra],
    { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proxies.push(child);
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const deadline = Date.now() + 60_000;
  while (!log.includes('Prism is listening')) {
    if (child.exitCode !== null) throw new Error(`prism exited:\n${log}`);
    if (Date.now() > deadline) throw new Error(`prism did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  hub = await startHub({
    name: 'traffic',
    models: MODELS.join(','),
    env: {
      MODELHUB_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`,
      // alice may use the README's priority 1; bob is held to one request a second (burst 2).
      MODELHUB_TENANT_LIMITS: JSON.stringify({ alice: { priority_ceiling: 1 }, bob: { rate_rps: 1 } }),
      MODELHUB_WEBHOOK_SECRET: 'whsec_' + Buffer.from('traffic-test-secret-32-bytes!!!!').toString('base64'),
    },
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-traffic-'));
  const doc = path.join(dir, 'openapi.json');
  fs.writeFileSync(doc, await (await fetch(`${hub.url}/openapi.json`)).text());
  strict = await startPrism(doc, hub.url, []);
  answers = await startPrism(doc, hub.url, ['--validate-request', 'false']);
}, 180_000);

afterAll(async () => {
  for (const p of proxies) p.kill('SIGTERM');
  await hub?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  type: string;
  text: string;
  /** Prism's own answer (a refused request or an answer the document does not describe). */
  prism: boolean;
}

async function send(
  base: string,
  method: string,
  route: string,
  options: { body?: unknown; headers?: Record<string, string>; key?: string | null } = {},
): Promise<Answer> {
  const key = options.key === undefined ? KEYS.alice : options.key;
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const r = await fetch(`${base}${route}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...options.headers,
    },
    body,
  });
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, type, text, prism: type.includes('problem+json') || text.includes('stoplight.io/prism') };
}

const json = (a: Answer) => JSON.parse(a.text);
/** What to print when an answer is not the hub's: Prism's complaint. */
const said = (a: Answer) => `${a.status} ${a.text.slice(0, 600)}`;

async function example(model: string): Promise<Record<string, unknown>> {
  return (
    await fetch(`${hub.url}/v1/models/${model}/example`, { headers: { authorization: `Bearer ${KEYS.alice}` } })
  ).json();
}

describe("the README's examples through a validating proxy", () => {
  it('every curl call in the README answers the hub’s own, documented answer', async () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => /^curl /m.test(b));
    const work = path.join(dir, 'readme');
    const out = path.join(work, 'calls');
    fs.mkdirSync(out, { recursive: true });
    fs.symlinkSync(path.join(REPO_ROOT, 'models'), path.join(work, 'models'));
    // The batch example uploads inputs.jsonl: two text-direction inputs.
    const line = JSON.stringify(await example('text-direction'));
    fs.writeFileSync(path.join(work, 'inputs.jsonl'), `${line}\n${line}\n`);
    const port = new URL(strict).host;
    const script = blocks
      .join('\n')
      .split('\n')
      // The metrics listeners are not behind this document's server (its /metrics names its own).
      .filter((l) => !/localhost:946[34]/.test(l))
      .join('\n')
      .replaceAll('localhost:8080', port)
      .replaceAll('/v1/jobs/<id>', '/v1/jobs/$(cat "$OUT/job-id")')
      .replaceAll('/v1/batches/<id>', '/v1/batches/$(cat "$OUT/batch-id")');
    // Each call is recorded (arguments, status line and headers, body); the body still goes to
    // stdout for the pipes. The hub has keys here, so the wrapper adds alice's.
    const wrapper = `
set -u
curl() {
  local f; f=$(mktemp "$OUT/call.XXXXXXXX")
  printf '%.200s' "$*" > "$f.args"
  command curl -H "Authorization: Bearer ${KEYS.alice}" -D "$f.head" -o "$f.body" "$@"
  local get; get=$(grep -o '"get":"/v1/[a-z]*/[^"]*"' "$f.body" | head -1 | tr -d '"')
  case "$get" in
    get:/v1/jobs/*) printf '%s' "\${get##*/}" > "$OUT/job-id" ;;
    get:/v1/batches/*) printf '%s' "\${get##*/}" > "$OUT/batch-id" ;;
  esac
  cat "$f.body"
}
`;
    fs.writeFileSync(path.join(work, 'examples.sh'), wrapper + script);
    await run('bash', [path.join(work, 'examples.sh')], {
      cwd: work,
      env: { ...process.env, OUT: out },
      maxBuffer: 256 << 20,
      timeout: 240_000,
    });
    const calls = fs
      .readdirSync(out)
      .filter((f) => f.endsWith('.args'))
      .map((f) => {
        const base = path.join(out, f.replace(/\.args$/, ''));
        const head = fs.readFileSync(`${base}.head`, 'utf8');
        const status = Number(/^HTTP\/[\d.]+ (\d+)/m.exec(head)?.[1]);
        const text = fs.readFileSync(`${base}.body`, 'utf8');
        const type = /^content-type:\s*(.*)$/im.exec(head)?.[1] ?? '';
        return { args: fs.readFileSync(`${base}.args`, 'utf8'), status, type, text };
      });
    // Every curl line of the README's shell examples, less the two metrics listeners'.
    expect(calls.length).toBeGreaterThanOrEqual(25);
    const refused = calls.filter(
      (c) => c.type.includes('problem+json') || c.text.includes('stoplight.io/prism') || !c.type.includes('json'),
    );
    expect(refused.map((c) => `${c.args} → ${c.status} ${c.text.slice(0, 400)}`)).toEqual([]);
    // Success everywhere but the cancel example, which says a finished job answers 409.
    const failed = calls.filter((c) => c.status >= 400 && !(c.status === 409 && c.args.includes('/cancel')));
    expect(failed.map((c) => `${c.args} → ${c.status} ${c.text.slice(0, 300)}`)).toEqual([]);
  }, 300_000);
});

describe("the integration suite's kinds of requests through a validating proxy", () => {
  /** A request the document allows: `strict` passes it and the hub's answer, which must be `status`. */
  async function valid(method: string, route: string, status: number, options: Parameters<typeof send>[3] = {}) {
    const a = await send(strict, method, route, options);
    expect({ route, answer: a.prism ? said(a) : a.status }).toEqual({ route, answer: status });
    return a;
  }
  /** A request the document refuses: `strict` answers Prism's 422; the hub's own answer (through `answers`) is documented. */
  async function refused(
    method: string,
    route: string,
    status: number,
    code: number,
    options: Parameters<typeof send>[3],
  ) {
    const r = await send(strict, method, route, options);
    expect({ route, prism: r.status, refused: r.prism }).toEqual({ route, prism: 422, refused: true });
    const a = await send(answers, method, route, options);
    expect({ route, answer: a.prism ? said(a) : [a.status, json(a).error_code] }).toEqual({
      route,
      answer: [status, code],
    });
  }
  const code = (a: Answer) => json(a).error_code;

  it('each task answers predict, with its options, as its own path documents', async () => {
    const image = (m: string) => example(m);
    await valid('POST', '/v1/models/text-direction/predict', 200, { body: await image('text-direction') });
    await valid('POST', '/v1/models/mobilenetv2/predict', 200, { body: await image('mobilenetv2') });
    await valid('POST', '/v1/models/text-detection/predict', 200, { body: await image('text-detection') });
    await valid('POST', '/v1/models/yolox-nano/predict', 200, {
      body: { ...(await image('yolox-nano')), score_threshold: 0.5, max_detections: 3 },
    });
    const seg = await image('text-segmentation');
    await valid('POST', '/v1/models/text-segmentation/predict', 200, { body: seg });
    for (const encoding of ['png', 'rle'])
      await valid('POST', '/v1/models/text-segmentation/predict', 200, { body: { ...seg, encoding } });
    await valid('POST', '/v1/models/deeplabv3-mobilenetv2/predict', 200, {
      body: { ...(await image('deeplabv3-mobilenetv2')), per_class_probs: true, encoding: 'png' },
    });
    const inst = await image('text-instances');
    for (const mask_encoding of ['array', 'rle', 'png'])
      await valid('POST', '/v1/models/text-instances/predict', 200, { body: { ...inst, mask_encoding } });
    await valid('POST', '/v1/models/bert-base-chinese/predict', 200, { body: await image('bert-base-chinese') });
    await valid('POST', '/v1/models/bert-base-chinese/predict', 200, {
      body: { first_sequence: 'hello', second_sequence: 'world', sequence_length: 8, format: 'array' },
    });
    await valid('POST', '/v1/models/bert-base-chinese/predict', 200, {
      body: { first_sequence: 'hello', output_schema: 'first_token_output,all_hidden_outputs', sequence_length: 4 },
    });
  }, 120_000);

  it('the catalog, each model, its example, workers, usage and the operations endpoints', async () => {
    await valid('GET', '/v1/models', 200);
    for (const m of MODELS) {
      await valid('GET', `/v1/models/${m}`, 200);
      await valid('GET', `/v1/models/${m}/example`, 200);
    }
    await valid('GET', '/v1/workers', 200);
    await valid('GET', '/v1/usage', 200);
    await valid('GET', '/healthz', 200, { key: null });
    await valid('GET', '/readyz', 200, { key: null });
    await valid('GET', '/openapi.json', 200, { key: null });
  });

  it('jobs: submit, wait, read, delete, cancel, idempotency', async () => {
    const input = await example('text-direction');
    const queued = await valid('POST', '/v1/models/text-direction/jobs', 202, { body: { input } });
    const id = json(queued).id as string;
    const done = await valid('GET', `/v1/jobs/${id}`, 200, { headers: { prefer: 'wait=20' } });
    expect(json(done).status).toBe('succeeded');
    expect(code(await valid('POST', `/v1/jobs/${id}/cancel`, 409))).toBe(1301);
    await valid('DELETE', `/v1/jobs/${id}`, 200);
    await valid('POST', '/v1/models/yolox-nano/jobs', 200, {
      body: { input: await example('yolox-nano'), priority: 2 },
      headers: { prefer: 'wait=20' },
    });
    const body = { input, timeout_s: 60 };
    await valid('POST', '/v1/models/text-direction/jobs', 202, { body, headers: { 'idempotency-key': 'traffic-1' } });
    await valid('POST', '/v1/models/text-direction/jobs', 200, { body, headers: { 'idempotency-key': 'traffic-1' } });
    const other = await valid('POST', '/v1/models/text-direction/jobs', 422, {
      body: { input, timeout_s: 30 },
      headers: { 'idempotency-key': 'traffic-1' },
    });
    expect(code(other)).toBe(1302);
  }, 60_000);

  it('batches: JSON and JSONL uploads, the result stream in both orders, read, cancel, the rate limit', async () => {
    const input = await example('text-direction');
    const a = await valid('POST', '/v1/models/text-direction/batches', 202, {
      body: { inputs: [input, input, { x: 1 }] },
    });
    const id = json(a).id as string;
    const jsonl = await valid('POST', '/v1/models/text-direction/batches?priority=4', 202, {
      body: `${JSON.stringify(input)}\nnot json\n`,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(json(jsonl).counts.total).toBe(2);
    for (let i = 0; i < 200; i++) {
      const view = json(await valid('GET', `/v1/batches/${id}`, 200));
      if (view.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const order of ['completion', 'input']) {
      const results = await valid('GET', `/v1/batches/${id}/results?order=${order}`, 200);
      expect(results.type).toContain('application/x-ndjson');
      const lines = results.text.trim().split('\n');
      expect(lines).toHaveLength(3);
      // Prism reads the stream as a string; each line is held to the line schema the document
      // carries as x-item-schema (the same zod schema), its output to the task's answer.
      for (const line of lines.map((l) => JSON.parse(l))) {
        expect(BatchResultLineSchema.strict().safeParse(line).error).toBeUndefined();
        if (line.output)
          expect(TASK_OUTPUTS['image-classification'].strict().safeParse(line.output).error).toBeUndefined();
      }
    }
    expect(code(await valid('POST', `/v1/batches/${id}/cancel`, 409))).toBe(1301);
    // bob: one request a second, a burst of 2: the third batch upload in a row is refused.
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await send(strict, 'POST', '/v1/models/text-direction/batches', {
        body: { inputs: [input] },
        key: KEYS.bob,
      });
      expect(r.prism, said(r)).toBe(false);
      statuses.push(r.status);
      if (r.status === 429) expect(code(r)).toBe(1403);
    }
    expect(statuses).toContain(429);
  }, 60_000);

  it('refusals the document allows the request for: 401, 404, 415, 400 (undecodable image)', async () => {
    const input = await example('text-direction');
    expect(code(await valid('GET', '/v1/models', 401, { key: null }))).toBe(1101);
    expect(code(await valid('GET', '/v1/models', 401, { key: 'not-a-key-0123456789' }))).toBe(1101);
    expect(code(await valid('POST', '/v1/models/no-such-model/predict', 404, { body: input }))).toBe(1201);
    expect(code(await valid('GET', '/v1/models/no-such-model', 404))).toBe(1201);
    expect(code(await valid('GET', '/v1/jobs/no-such-job', 404))).toBe(1202);
    expect(code(await valid('GET', '/v1/batches/no-such-batch', 404))).toBe(1202);
    expect(code(await valid('GET', '/v1/batches/no-such-batch/results', 404))).toBe(1202);
    const avif = Buffer.concat([Buffer.from([0, 0, 0, 0x1c]), Buffer.from('ftypavif'), Buffer.alloc(24)]);
    for (const m of ['text-direction', 'text-detection', 'text-segmentation', 'text-instances']) {
      const r = await valid('POST', `/v1/models/${m}/predict`, 415, { body: { image: avif.toString('base64') } });
      expect(code(r)).toBe(1007);
    }
    const junk = Buffer.from('this is not an image file at all').toString('base64');
    expect(code(await valid('POST', '/v1/models/mobilenetv2/predict', 400, { body: { image: junk } }))).toBe(1003);
    expect(
      code(
        await valid('POST', '/v1/models/mobilenetv2/jobs', 415, {
          body: { input: { image: avif.toString('base64') } },
        }),
      ),
    ).toBe(1007);
  });

  it('requests the document refuses: Prism says so, and the hub’s own answer is documented', async () => {
    const input = await example('text-direction');
    await refused('POST', '/v1/models/text-direction/predict', 400, 1002, { body: { ...input, score_threshold: 0.5 } });
    await refused('POST', '/v1/models/mobilenetv2/predict', 400, 1002, { body: {} });
    await refused('POST', '/v1/models/text-detection/predict', 400, 1002, { body: { ...input, max_detections: 0 } });
    await refused('POST', '/v1/models/text-instances/predict', 400, 1002, {
      body: { ...input, mask_encoding: 'jpeg' },
    });
    await refused('POST', '/v1/models/bert-base-chinese/predict', 400, 1002, {
      body: { first_sequence: 'x', sequence_length: 600 },
    });
    await refused('POST', '/v1/models/text-direction/jobs', 400, 1002, { body: { input, priority: 11 } });
    // Sent as text/plain (the hub reads any type as JSON): Prism 5.16 never answers a malformed
    // body declared application/json.
    await refused('POST', '/v1/models/text-direction/predict', 400, 1001, {
      body: '{"image": ',
      headers: { 'content-type': 'text/plain' },
    });
    await refused('GET', '/v1/batches/any/results?order=random', 400, 1006, {});
  });

  it('the document lists the statuses the issue found missing', async () => {
    const doc = await (await fetch(`${hub.url}/openapi.json`)).json();
    const codes = (path: string, method: string, status: string): number[] =>
      doc.paths[path][method].responses[status].content['application/json'].schema.properties.error_code.enum;
    expect(codes('/v1/models/{model}/jobs', 'post', '409')).toContain(1301);
    expect(codes('/v1/models/text-direction/jobs', 'post', '409')).toContain(1301);
    expect(codes('/v1/models/{model}/predict', 'post', '415')).toContain(1007);
    expect(codes('/v1/models/text-direction/predict', 'post', '415')).toContain(1007);
    expect(codes('/v1/models/{model}/batches', 'post', '429')).toContain(1403);
  });
});
