/**
 * The API's JSON body parser on both of its paths: on the event loop (small bodies) and in an
 * offload thread (past OFFLOOP_PARSE_BYTES). Same answers either way; and while a large body is
 * parsed in a thread the event loop keeps turning and other requests are answered (counted by
 * event-loop turns and by the order of answers, never by time).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody } from '../../api/json-body.js';
import { validateInput } from '../../api/input-validation.js';
import { DecodedImage, decodedImageOf } from '../../api/body-parse.js';
import { asSpecError } from '../../shared/errors.js';
import { OffloopPool } from '../../shared/offloop/pool.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { loadConfig } from '../../shared/config.js';
import { intakeOptions } from '../../shared/options/intake.js';

const pool = new OffloopPool({ module: new URL('../../api/body-parse.ts', import.meta.url), maxThreads: 1 });
const LIMITS = { limit: 40 * 1024 * 1024, maxDepth: 8, maxValues: 1000, maxImageBytes: 20 * 1024 * 1024, pool };

/** An app with only the parser: it answers with what the route would have seen. */
async function serve(
  offloopBytes: number,
  hooks: { onEnd?: (req: Request) => void; onRoute?: (req: Request) => void } = {},
) {
  const app = express();
  app.use((req: Request, _res: Response, next: NextFunction) => {
    // Registered before the parser's own listener: runs first when the last byte has arrived.
    req.on('end', () => hooks.onEnd?.(req));
    next();
  });
  app.use(jsonBody({ ...LIMITS, offloopBytes }));
  app.post('/', (req: Request, res: Response) => {
    hooks.onRoute?.(req);
    const image = decodedImageOf(req.body);
    res.json({
      body: req.body,
      image: image && {
        text: image.text.length < 100 ? image.text : image.text.length,
        bytes: image.bytes.length < 100 ? [...image.bytes] : image.bytes.length,
      },
    });
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const spec = asSpecError(err);
    res.status(spec.httpStatus).json(spec.toBody());
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((r) => server.close(r)),
  };
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}, kind = 'small') {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-kind': kind, ...headers },
    body: body as BodyInit,
  });
  return { status: r.status, body: await r.json() };
}

afterAll(() => pool.close());

describe('jsonBody: the same answers on and off the event loop', () => {
  let inline: Awaited<ReturnType<typeof serve>>;
  let offloop: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    inline = await serve(0);
    offloop = await serve(1); // every non-empty body goes to the thread
  });
  afterAll(async () => {
    await inline.close();
    await offloop.close();
  });

  const cases: [string, string | Buffer, Record<string, string>?][] = [
    ['bad JSON', '{"input": {"image": "AAAA"'],
    ['bad JSON, trailing garbage', '{"a":1} x'],
    ['too deep', '[[[[[[[[[[1]]]]]]]]]]'],
    ['too many values', `[${'0,'.repeat(2000)}0]`],
    ['deep brackets inside a string are fine', '{"a":"[[[[[[[[[[[[[[[["}'],
    ['unsupported charset', '{"a":1}', { 'content-type': 'application/json; charset=latin1' }],
    ['utf-8 with a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"é"}')])],
    [
      'a job image: stripped and decoded',
      JSON.stringify({ input: { image: 'data:image/png;base64,AAEC\nAwQF' }, priority: 3 }),
    ],
    ['a predict image', JSON.stringify({ image: 'AAECAwQF' })],
    ['an invalid image is left to validation', JSON.stringify({ input: { image: 'not base64!' } })],
    [
      'an image past the image limit is not decoded',
      JSON.stringify({ input: { image: 'A'.repeat(28 * 1024 * 1024) } }),
    ],
  ];
  it.each(cases)('%s', async (_name, body, headers) => {
    const a = await post(inline.url, body, headers);
    const b = await post(offloop.url, body, headers);
    expect(b).toEqual(a);
  });

  it('answers the spec errors', async () => {
    const r1 = await post(offloop.url, '{"a":');
    expect(r1.status).toBe(400);
    expect(r1.body.error_code).toBe(1001);
    expect(r1.body.error_msg).toMatch(/^request body is not valid JSON: /);
    const r2 = await post(offloop.url, '[[[[[[[[[[1]]]]]]]]]]');
    expect(r2.status).toBe(400);
    expect(r2.body.error_msg).toBe('request body is nested deeper than 8 levels');
    const r3 = await post(offloop.url, `[${'0,'.repeat(2000)}0]`);
    expect(r3.body.error_msg).toBe('request body has more than 1000 JSON values');
    const r4 = await post(offloop.url, JSON.stringify({ input: { image: 'data:image/png;base64,AAEC\nAwQF' } }));
    const r5 = await post(offloop.url, JSON.stringify({ input: { image: 'A'.repeat(28 * 1024 * 1024) } }));
    expect(r5.status).toBe(200);
    expect(r5.body.image).toBeUndefined();
    expect(r4.body).toEqual({
      body: { input: { image: 'AAECAwQF' } },
      image: { text: 'AAECAwQF', bytes: [0, 1, 2, 3, 4, 5] },
    });
  });
});

describe('jsonBody: a large body does not hold the event loop', () => {
  const big = JSON.stringify({ input: { image: Buffer.alloc(18 * 1024 * 1024, 7).toString('base64') } });

  /**
   * Counts event-loop turns (setImmediate) between the big body's last byte arriving and its
   * route running, and fires a small request at that moment; returns the turns and the order in
   * which the two requests reached their route.
   */
  async function race(offloopBytes: number) {
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    let atEnd = -1;
    let atRoute = -1;
    const order: string[] = [];
    let small: Promise<unknown> = Promise.resolve();
    const app = await serve(offloopBytes, {
      onEnd: (req) => {
        if (req.get('x-kind') !== 'big') return;
        atEnd = turns;
        small = post(app.url, '{"ping":1}');
      },
      onRoute: (req) => {
        order.push(req.get('x-kind')!);
        if (req.get('x-kind') === 'big') atRoute = turns;
      },
    });
    try {
      await post(app.url, '{"warm":1}'); // a connection and (offloaded) a started thread are not what is measured
      order.length = 0;
      spin();
      const answer = await post(app.url, big, {}, 'big');
      await small;
      expect(answer.status).toBe(200);
      return { turnsWhileParsing: atRoute - atEnd, order };
    } finally {
      spinning = false;
      await app.close();
    }
  }

  it('on the event loop (the old way), nothing else runs while a 25 MB body is parsed', async () => {
    const { turnsWhileParsing, order } = await race(0);
    expect(turnsWhileParsing).toBe(0);
    expect(order).toEqual(['big', 'small']);
  });

  it('in a thread, the loop keeps turning and a request sent after it started is answered first', async () => {
    const { turnsWhileParsing, order } = await race(1024 * 1024);
    expect(turnsWhileParsing).toBeGreaterThan(0);
    expect(order).toEqual(['small', 'big']);
  });
});

describe('validateInput with an image decoded by the parser', () => {
  it('gives the same job input as validating the text itself', async () => {
    const config = loadConfig({});
    const models = loadModelRepository(config);
    const entry = models.get('resnet50')!;
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const raw = { image: `data:image/png;base64,${png.toString('base64')}` };
    const plain = await validateInput(entry, structuredClone(raw), intakeOptions(config));
    const text = png.toString('base64');
    const viaParser = await validateInput(entry, { image: new DecodedImage(text, png) }, intakeOptions(config));
    expect(viaParser).toEqual(plain);
    // Only the parser's DecodedImage is taken as checked: any other value is validated as itself.
    await expect(validateInput(entry, { image: 'AAAA' }, intakeOptions(config))).rejects.toMatchObject({
      kind: 'INVALID_IMAGE',
    });
  });
});
