/** The release version is written once, in package.json; the code reads it from there (shared/version.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { VERSION } from '../../shared/version.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

describe('release version', () => {
  it("is package.json's", () => {
    expect(VERSION).toBe(pkg.version);
  });

  it('is not written as a string in the code the processes run', () => {
    const quoted = new RegExp(`['"\`/]${pkg.version.replaceAll('.', '\\.')}['"\`]`);
    const sources = ['api', 'worker', 'webhooks', 'shared', 'deploy/local'].flatMap((dir) =>
      fs
        .readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.(ts|mjs|js)$/.test(f))
        .map((f) => path.join(dir, f)),
    );
    expect(sources.length).toBeGreaterThan(50);
    const writers = sources.filter((f) => quoted.test(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')));
    expect(writers).toEqual([]);
  });
});
