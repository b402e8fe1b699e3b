/**
 * The SDK ships compiled (clients/typescript/lib), so `npx modelhub` and the console work right
 * after `npm ci`, even with --omit=dev. This checks the committed build is exactly what its
 * sources compile to: run `npm run client:build` after editing clients/typescript/src.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';

const CLIENT = path.join(REPO_ROOT, 'clients/typescript');
const listFiles = (dir: string): string[] =>
  fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();

describe('SDK build', () => {
  it('clients/typescript/lib is the compiled clients/typescript/src', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-sdk-'));
    try {
      await promisify(execFile)(process.execPath, [
        path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(CLIENT, 'tsconfig.json'),
        '--outDir',
        out,
      ]);
      const built = listFiles(out);
      expect(listFiles(path.join(CLIENT, 'lib'))).toEqual(built);
      for (const f of built)
        expect(
          fs.readFileSync(path.join(CLIENT, 'lib', f), 'utf8'),
          `lib/${f} is stale: run npm run client:build`,
        ).toBe(fs.readFileSync(path.join(out, f), 'utf8'));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('the CLI is executable and the bin of the package', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin.modelhub).toBe('clients/typescript/lib/cli.js');
    expect(fs.statSync(path.join(CLIENT, 'lib/cli.js')).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(path.join(CLIENT, 'lib/cli.js'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
