/**
 * Production shape: the compiled API and worker (`npm run build` → dist/) start with production
 * dependencies only (`npm ci --omit=dev`: no TypeScript, tsx, vitest or onnx-proto) and answer a
 * real job — the text-direction classifier, whose weights come from a runtime dependency.
 * Everything runs from a copy in a temporary folder, as a container's runtime stage would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { REDIS_URL, deletePrefix, freePort, getJson, pollJob, postJson, testPrefix } from '../helpers/hub.js';
import { b64, textLineImage } from '../helpers/images.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/**
 * Dev packages a compiled file may name, with why it never loads them from dist/: the offload
 * thread host registers tsx only for a task module given as a .ts source (tests, tsx runs).
 */
const DEV_IMPORTS_NEVER_LOADED_FROM_DIST: Record<string, string[]> = {
  'shared/offloop/thread-host.mjs': ['tsx'],
};

/** The package a bare import specifier names (`@scope/name/sub` → `@scope/name`), or null for a path or a builtin. */
function packageOf(specifier: string): string | null {
  if (/^[./]/.test(specifier) || specifier.startsWith('node:') || builtinModules.includes(specifier)) return null;
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}

let app: string;
let prefix: string;
let apiUrl: string;
const processes: { name: string; child: ChildProcess; log: () => string }[] = [];

function run(command: string, args: string[], cwd: string): void {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' },
  });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

/** Starts `node --enable-source-maps <entry>` (as production does) from the copy with only the settings given (no tsx, no test env). */
function startNode(name: string, entry: string, args: string[], env: Record<string, string>): void {
  let log = '';
  const child = spawn(process.execPath, ['--enable-source-maps', entry, ...args], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  processes.push({ name, child, log: () => log });
}

async function untilOk(url: string, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = processes.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode}):\n${dead.log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not answer ${url}:\n${processes.map((p) => `${p.name}: ${p.log()}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-compiled-'));
  // The build script itself, into the copy; then what a runtime image holds: the manifest files,
  // dist/, models/ (manifests, labels, examples; no generated test models) and the compiled SDK
  // the console imports.
  run(process.execPath, [path.join(REPO_ROOT, 'deploy/build.mjs'), '--out-dir', path.join(app, 'dist')], REPO_ROOT);
  for (const f of ['package.json', 'package-lock.json', '.npmrc'])
    fs.copyFileSync(path.join(REPO_ROOT, f), path.join(app, f));
  fs.cpSync(path.join(REPO_ROOT, 'models'), path.join(app, 'models'), {
    recursive: true,
    filter: (src) => !src.includes(`${path.sep}.generated`),
  });
  fs.cpSync(path.join(REPO_ROOT, 'clients/typescript/lib'), path.join(app, 'clients/typescript/lib'), {
    recursive: true,
  });
  // --prefer-offline: packages already in the npm cache (the repository's own install) are not
  // downloaded again.
  run('npm', ['ci', '--omit=dev', '--prefer-offline', '--ignore-scripts=false', '--no-audit', '--no-fund'], app);

  prefix = testPrefix('compiled');
  const port = await freePort();
  const metricsPort = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const common = { REDIS_URL, MODELHUB_PREFIX: prefix, HOST: '127.0.0.1' };
  startNode('api', 'dist/api/main.js', [], { ...common, PORT: String(port) });
  startNode('worker', 'dist/worker/main.js', ['--device', 'cpu', '--models', 'text-direction'], {
    ...common,
    METRICS_PORT: String(metricsPort),
  });
  await untilOk(`${apiUrl}/readyz`, 'the compiled API');
  await untilOk(`http://127.0.0.1:${metricsPort}/healthz`, 'the compiled worker');
}, 600_000);

afterAll(async () => {
  await Promise.all(
    processes.map(({ child }) =>
      child.exitCode !== null || child.signalCode !== null
        ? undefined
        : new Promise((r) => {
            child.once('exit', r);
            child.kill('SIGTERM');
          }),
    ),
  );
  if (prefix) await deletePrefix(prefix);
  if (app) fs.rmSync(app, { recursive: true, force: true });
}, 60_000);

describe('compiled build with production dependencies only', () => {
  it('has no dev dependency installed and nothing but compiled JavaScript to run', () => {
    const devDeps = Object.keys(pkg.devDependencies);
    expect(devDeps).toEqual(expect.arrayContaining(['tsx', 'typescript', 'vitest', 'onnx-proto']));
    // A dev dependency that a production dependency also needs is installed, and must be: the
    // lockfile then no longer marks it dev. Today only @types/node (protobufjs, under
    // @opentelemetry/sdk-node's gRPC exporter, lists it as a dependency); no tool may be one.
    const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
    };
    const neededInProduction = devDeps.filter((dep) => {
      const entry = lock.packages[`node_modules/${dep}`];
      return entry !== undefined && !entry.dev && !entry.devOptional;
    });
    expect(neededInProduction.every((dep) => dep.startsWith('@types/'))).toBe(true);
    for (const dep of devDeps.filter((d) => !neededInProduction.includes(d)))
      expect(fs.existsSync(path.join(app, 'node_modules', dep)), `${dep} must be absent`).toBe(false);
    expect(fs.existsSync(path.join(app, 'dist/api/main.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'dist/api/main.js.map'))).toBe(true);
    // Files loaded from beside the code at run time travel with it.
    expect(fs.existsSync(path.join(app, 'dist/worker/backend/session-host.mjs'))).toBe(true);
    const luaBeside = (dir: string): string[] =>
      fs
        .readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.lua'))
        .map((f) => path.join(dir, f));
    for (const lua of ['api', 'worker', 'webhooks', 'shared']
      .filter((d) => fs.existsSync(path.join(REPO_ROOT, d)))
      .flatMap(luaBeside)) {
      expect(fs.existsSync(path.join(app, 'dist', lua)), `dist/${lua}`).toBe(true);
    }
  });

  it('imports, in every compiled file, only runtime dependencies', () => {
    const files = fs
      .readdirSync(path.join(app, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.[mc]?js$/.test(f));
    const named = new Set<string>();
    const outsideDependencies: string[] = [];
    for (const file of files) {
      // TypeScript's own scanner: static imports and re-exports, import() and require().
      const { importedFiles } = ts.preProcessFile(fs.readFileSync(path.join(app, 'dist', file), 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        const name = packageOf(fileName);
        if (name === null) continue;
        named.add(name);
        const allowed = DEV_IMPORTS_NEVER_LOADED_FROM_DIST[file.split(path.sep).join('/')] ?? [];
        if (!(name in pkg.dependencies) && !allowed.includes(name)) outsideDependencies.push(`dist/${file}: ${name}`);
      }
    }
    // The scan reads the real code: the queue and the runtime are among what it names.
    expect([...named]).toEqual(expect.arrayContaining(['bullmq', 'express', 'onnxruntime-node']));
    expect(outsideDependencies).toEqual([]);
    // The test-model generators are dev tools, run from source (npm run models:generate, npm start).
    expect(fs.existsSync(path.join(app, 'dist/models'))).toBe(false);
  });

  it('starts the one-machine launcher without dev dependencies, skipping the test models', () => {
    // A REDIS_URL that is not the default and does not answer: the launcher stops right after
    // the test-model step, before starting anything.
    const r = spawnSync(process.execPath, ['dist/deploy/local/start.js'], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), LOG_FORMAT: 'json', REDIS_URL: 'redis://127.0.0.1:1' },
      timeout: 30_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain('test models not generated (dev dependencies are not installed)');
    expect(r.stdout).toContain('REDIS_URL does not answer');
    expect(fs.existsSync(path.join(app, 'models/.generated'))).toBe(false);
  });

  it('serves the web console and the SDK it imports from the compiled code', async () => {
    const page = await fetch(`${apiUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${apiUrl}/sdk/index.js`)).status).toBe(200);
  });

  it("names package.json's version in its OpenAPI document", async () => {
    const doc = await getJson(`${apiUrl}/openapi.json`);
    expect(doc.body.info.version).toBe(pkg.version);
  });

  it('answers the text-direction example through the queue with the spec §1.1 output', async () => {
    const models = (await getJson(`${apiUrl}/v1/models`)).body.models as {
      name: string;
      status: string;
      weights?: string;
    }[];
    expect(models.find((m) => m.name === 'text-direction')).toMatchObject({ status: 'ready', weights: 'real' });
    // Without dev dependencies no test model was generated: a reference model without weights is unavailable.
    expect(models.find((m) => m.name === 'resnet50')?.status).toBe('unavailable');

    const example = await getJson(`${apiUrl}/v1/models/text-direction/example`);
    expect(example.status).toBe(200);
    const predicted = await postJson(`${apiUrl}/v1/models/text-direction/predict`, example.body);
    expect(predicted.status).toBe(200);
    expect(Object.keys(predicted.body).sort()).toEqual([
      'class',
      'class_name',
      'class_probs',
      'error_code',
      'metrics',
      'request_id',
      'success',
    ]);
    expect(predicted.body).toMatchObject({ class: 1, class_name: '180', success: true, error_code: 0 });
    expect(Object.keys(predicted.body.class_probs).sort()).toEqual(['0', '180']);
    expect(predicted.body.class_probs['180']).toBeGreaterThan(0.9);
    expect(predicted.body.class_probs['0'] + predicted.body.class_probs['180']).toBeCloseTo(1, 5);

    // An asynchronous job, polled back: an upright line reads 0.
    const upright = await textLineImage('Compiled and deployed');
    const submitted = await postJson(`${apiUrl}/v1/models/text-direction/jobs`, { input: { image: b64(upright) } });
    expect(submitted.status).toBe(202);
    const job = await pollJob(apiUrl, submitted.body.id);
    expect(job.status).toBe('succeeded');
    expect(job.output).toMatchObject({
      class: 0,
      class_name: '0',
      success: true,
      error_code: 0,
      request_id: submitted.body.id,
    });
    const rotated = await postJson(`${apiUrl}/v1/models/text-direction/predict`, {
      image: b64(await sharp(upright).rotate(180).png().toBuffer()),
    });
    expect(rotated.body).toMatchObject({ class: 1, class_name: '180', success: true });
  });
});
