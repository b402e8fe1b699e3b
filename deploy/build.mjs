// `npm run build`: compiles the TypeScript to dist/ (tsc -p tsconfig.build.json, with source
// maps), then copies every other file under api/, worker/, webhooks/, shared/ and deploy/local/ (.lua
// scripts, the session thread host .mjs, the resampler's .wasm, static web files, ...) to the same
// place under dist/, so code that loads a file from next to itself (`new URL('./x.lua',
// import.meta.url)`) finds it when compiled too. models/ is neither compiled nor copied:
// manifests, labels, examples and weights are read in place from the repository root (REPO_ROOT
// in shared/config.ts), and the test-model generators in models/tools/ are dev tools, run from
// source.
//   node deploy/build.mjs [--out-dir DIR]     (default: dist/ of the repository)
// Plain JavaScript, because it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'out-dir': { type: 'string', default: path.join(root, 'dist') } } });
const dist = path.resolve(values['out-dir']);
const ASSET_DIRS = ['api', 'worker', 'webhooks', 'shared', 'deploy/local'];
const isTypeScript = (name) => /\.[mc]?ts$/.test(name);

fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', dist], {
  stdio: 'inherit',
});
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

let copied = 0;
const copyAssets = (dir) => {
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) copyAssets(rel);
    else if (entry.isFile() && !isTypeScript(entry.name)) {
      fs.mkdirSync(path.join(dist, dir), { recursive: true });
      fs.copyFileSync(path.join(root, rel), path.join(dist, rel));
      copied++;
    }
  }
};
for (const dir of ASSET_DIRS) copyAssets(dir);
console.log(`build: compiled to ${path.relative(root, dist) || '.'}, ${copied} run-time file(s) copied beside it`);
