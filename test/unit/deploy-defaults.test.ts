/**
 * Generated stand-ins stay out of production: every deploy default turns them off (npm start
 * keeps them). Every process runs with source maps, so its stack traces name TypeScript lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { nodeEntryArgs } from '../../shared/entry-point.js';

const read = (f: string) => fs.readFileSync(path.join(REPO_ROOT, f), 'utf8');

describe('deploy defaults', () => {
  it.each(['deploy/docker/Dockerfile', 'deploy/docker/Dockerfile.cuda'])('%s sets MODELHUB_TEST_MODELS=off', (f) => {
    expect(read(f)).toMatch(/^\s*(ENV .*)?MODELHUB_TEST_MODELS=off\b/m);
  });

  it.each(['docker-compose.yml', 'deploy/kubernetes/configmap.yaml'])('%s sets MODELHUB_TEST_MODELS: "off"', (f) => {
    const values = [...read(f).matchAll(/^\s*MODELHUB_TEST_MODELS:\s*(\S+)/gm)].map((m) => m[1]);
    expect(values).toEqual(['"off"']);
  });
});

describe('source maps', () => {
  const COMPILED_ENTRY = /\bdist\/[\w/-]+\.js\b/;
  const WITH_SOURCE_MAPS = /\bnode("?,\s*"?|\s+)--enable-source-maps("?,\s*"?|\s+)dist\//;

  it.each([
    'package.json',
    'deploy/docker/Dockerfile',
    'deploy/docker/Dockerfile.cuda',
    'docker-compose.yml',
    'deploy/kubernetes/api.yaml',
    'deploy/kubernetes/worker-cpu.yaml',
    'deploy/kubernetes/worker-gpu.yaml',
    'deploy/kubernetes/webhooks.yaml',
    'deploy/gpu-smoke.sh',
  ])('%s starts every compiled entry point with --enable-source-maps', (f) => {
    const starts = read(f)
      .split('\n')
      .filter((line) => COMPILED_ENTRY.test(line));
    expect(starts.length).toBeGreaterThan(0);
    for (const line of starts) expect(line).toMatch(WITH_SOURCE_MAPS);
  });

  it("passes --enable-source-maps, once, to the processes the fleet and npm start spawn, beside this process's flags", () => {
    const args = nodeEntryArgs(import.meta.url, './main');
    expect(args.filter((a) => a === '--enable-source-maps')).toHaveLength(1);
    expect(args.slice(0, process.execArgv.length)).toEqual(process.execArgv);
    expect(args.at(-1)).toBe(path.join(path.dirname(new URL(import.meta.url).pathname), 'main.ts'));
  });
});
