// `npm run build:wasm`: assembles each WebAssembly text file (.wat) under worker/ into the .wasm
// beside it, with wabt's wat2wasm (SIMD on). The .wasm files are committed, so neither the build
// nor production needs wabt; test/unit/resample.test.ts checks each .wasm against its source.
//   node deploy/build-wasm.mjs            (write)
//   node deploy/build-wasm.mjs --check    (exit 1 when a .wasm is not its .wat's assembly)
// Plain JavaScript, like build.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import wabtInit from 'wabt';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
const wabt = await wabtInit();

const sources = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return entry.name.endsWith('.wat') ? [file] : [];
  });

let stale = 0;
for (const wat of sources(path.join(root, 'worker'))) {
  const module = wabt.parseWat(path.basename(wat), fs.readFileSync(wat, 'utf8'), { simd: true });
  const bytes = Buffer.from(module.toBinary({}).buffer);
  module.destroy();
  const wasm = wat.replace(/\.wat$/, '.wasm');
  const rel = path.relative(root, wasm);
  if (values.check) {
    const same = fs.existsSync(wasm) && Buffer.compare(fs.readFileSync(wasm), bytes) === 0;
    if (!same) stale++;
    console.log(`${same ? 'ok' : 'STALE'} ${rel}`);
  } else {
    fs.writeFileSync(wasm, bytes);
    console.log(`wrote ${rel} (${bytes.length} bytes)`);
  }
}
if (stale > 0) {
  console.error(`${stale} .wasm file(s) differ from their .wat: run npm run build:wasm`);
  process.exit(1);
}
