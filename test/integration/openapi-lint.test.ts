/**
 * /openapi.json as served passes Redocly's recommended ruleset with no error (offline: the CLI
 * is a pinned devDependency, telemetry and update checks are off). The only warnings allowed
 * are the missing 4xx answers of the four key-less operations endpoints, which take no input.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { startHub, type Hub } from '../helpers/hub.js';

const run = promisify(execFile);
const REDOCLY = path.join(REPO_ROOT, 'node_modules/@redocly/cli/bin/cli.js');

let hub: Hub;
let dir: string;
beforeAll(async () => {
  hub = await startHub({ name: 'openapi', workers: 0 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-openapi-'));
});
afterAll(async () => {
  await hub?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Problem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: { pointer: string }[];
}

describe('OpenAPI document', () => {
  it('passes `redocly lint` (recommended) with no error', async () => {
    const doc = await (await fetch(`${hub.url}/openapi.json`)).json();
    const file = path.join(dir, 'openapi.json');
    fs.writeFileSync(file, JSON.stringify(doc));
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' };
    let stdout: string;
    try {
      ({ stdout } = await run(
        process.execPath,
        [REDOCLY, 'lint', file, '--extends', 'recommended', '--format', 'json'],
        { env, cwd: dir, maxBuffer: 16 << 20 },
      ));
    } catch (err) {
      // Exit status 1 means errors were found; the JSON report still says which.
      stdout = (err as { stdout?: string }).stdout ?? '';
      if (!stdout) throw err;
    }
    const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: Problem[] };
    const described = report.problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`);
    expect(described.filter((d) => d.startsWith('error'))).toEqual([]);
    expect(report.totals.errors).toBe(0);
    const allowed = ['/healthz', '/readyz', '/metrics', '/openapi.json'].map(
      (p) => `warn operation-4xx-response #/paths/${p.replaceAll('/', '~1')}/get/responses`,
    );
    expect(described.filter((d) => !allowed.some((a) => d.startsWith(a)))).toEqual([]);
  });

  it('names every operation, uniquely, and serves it from the same origin', async () => {
    const doc = await (await fetch(`${hub.url}/openapi.json`)).json();
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
    const ids = Object.values(doc.paths as Record<string, Record<string, { operationId?: string }>>).flatMap((ops) =>
      Object.values(ops).map((o) => o.operationId),
    );
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Except /metrics, on the metrics listener: the public port answers it with 404.
    expect(doc.paths['/metrics'].get.servers).toEqual([
      expect.objectContaining({
        url: 'http://{host}:{port}',
        variables: expect.objectContaining({ port: expect.objectContaining({ default: '9463' }) }),
      }),
    ]);
    expect((await fetch(`${hub.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${hub.api.metricsUrl}/metrics`)).status).toBe(200);
  });
});
