/**
 * Starting another of our processes the way this one was started: from the compiled code
 * (`node dist/...js`) in production, or from the TypeScript sources with the same node flags
 * (e.g. tsx's loader) in development and tests. No loader is named here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE_MAPS = '--enable-source-maps';

/**
 * Arguments for `spawn(process.execPath, ...)` that run `entry` (a path without extension,
 * relative to the module at `fromUrl`, e.g. `./main`) with this process's node flags and the
 * caller's own file extension (.js compiled, .ts from source).
 */
export function nodeEntryArgs(fromUrl: string, entry: string): string[] {
  const from = fileURLToPath(fromUrl);
  // Stack traces in the child's logs name the TypeScript lines, however this process was started.
  const flags = process.execArgv.includes(SOURCE_MAPS) ? process.execArgv : [...process.execArgv, SOURCE_MAPS];
  return [...flags, path.resolve(path.dirname(from), `${entry}${path.extname(from)}`)];
}
