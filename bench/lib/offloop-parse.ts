/**
 * bench/offloop.ts's `parse` step: a ~25 MB job body through the API's body parser and input
 * validation, once with every body parsed on the event loop (OFFLOOP_PARSE_BYTES=0, the old
 * way) and once with the default threshold (parsed in a thread).
 */
import { randomBytes } from 'node:crypto';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import sharp from 'sharp';
import { jsonBody } from '../../api/json-body.js';
import { validateInput } from '../../api/input-validation.js';
import { MAX_JSON_DEPTH } from '../../api/schemas.js';
import { loadConfig } from '../../shared/config.js';
import { intakeOptions } from '../../shared/options/intake.js';
import { asSpecError } from '../../shared/errors.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { OffloopPool } from '../../shared/offloop/pool.js';
import type { Step } from '../offloop.js';

function post(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function benchParse(): Promise<Step> {
  const config = loadConfig({ ...process.env, MODELHUB_TEST_MODELS: 'always' });
  const entry = loadModelRepository(config).get('resnet50')!;
  const intake = intakeOptions(config);
  const side = 2450; // ~18 MB of incompressible PNG: ~24 MB as base64, under the 20 MB image limit
  const png = await sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  const body = Buffer.from(JSON.stringify({ input: { image: png.toString('base64') } }));
  console.log(
    `parse: body ${(body.length / 1e6).toFixed(1)} MB (PNG ${(png.length / 1e6).toFixed(1)} MB, ${side}×${side})`,
  );
  const pool = new OffloopPool({ module: new URL('../../api/body-parse.ts', import.meta.url), maxThreads: 1 });
  const servers: Server[] = [];
  const serve = async (offloopBytes: number) => {
    const app = express();
    app.use(
      jsonBody({
        limit: intake.bodyLimitBytes,
        offloopBytes,
        maxDepth: MAX_JSON_DEPTH,
        maxValues: intake.maxJsonValues,
        maxImageBytes: intake.maxImageBytes,
        pool,
      }),
    );
    app.post('/', async (req: Request, res: Response) => {
      await validateInput(entry, req.body.input, intake);
      res.json({ ok: true });
    });
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const spec = asSpecError(err);
      res.status(spec.httpStatus).json(spec.toBody());
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    return async () => {
      const status = await post(url, body);
      if (status !== 200) throw new Error(`parse bench: HTTP ${status}`);
    };
  };
  return {
    name: 'parse',
    inline: await serve(0),
    offloop: await serve(intake.offloopParseBytes),
    close: async () => {
      for (const s of servers) s.close();
      await pool.close();
    },
  };
}
