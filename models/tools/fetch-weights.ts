/**
 * Downloads the weights a model's manifest names (`model.files`) for users who are online:
 *   npm run models:fetch -- <model…|all> [--from <dir>]
 * - the first alternative with a source is fetched: its `url`, or `${MODELHUB_WEIGHTS_MIRROR}/<name>`
 *   when a mirror is set (air-gapped sites), or `<dir>/<name>` with --from;
 * - a cut connection resumes where it stopped (HTTP Range), a few times;
 * - the download is written to `<name>.part` beside its destination, its sha256 checked against
 *   the manifest, and only then renamed into place: a model file is never half-written;
 * - destination: MODELHUB_WEIGHTS_DIR when set, else the manifest's folder.
 * A model whose file is already present (any alternative, in any searched folder) is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../../shared/config.js';
import { sha256File } from '../../shared/file-hash.js';
import { loadModelRepository, type ModelEntry, type WeightsFile } from '../../shared/manifest.js';

export class FetchError extends Error {
  override name = 'FetchError';
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

export interface Progress {
  model: string;
  file: string;
  received: number;
  /** Bytes in all, when the server says. */
  total: number | null;
}

export interface FetchOptions {
  /** Where downloads go (MODELHUB_WEIGHTS_DIR); unset: the manifest's folder. */
  weightsDir?: string;
  /** Base URL that replaces every file's own url (MODELHUB_WEIGHTS_MIRROR). */
  mirror?: string;
  /** Install from this folder instead of downloading. */
  fromDir?: string;
  /** Attempts per file (a cut connection resumes on the next one). */
  attempts?: number;
  retryDelayMs?: number;
  onProgress?: (p: Progress) => void;
}

export interface FetchResult {
  model: string;
  status: 'present' | 'downloaded' | 'installed';
  file: string;
  sha256: string;
  /** The manifest gives no sha256 for this file: the download could not be verified. */
  unverified?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GETs url into `part`, resuming from what `part` already holds; retries a cut connection. */
async function download(
  url: string,
  part: string,
  opts: FetchOptions,
  report: (received: number, total: number | null) => void,
): Promise<void> {
  const attempts = opts.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
    try {
      const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
      if (res.status === 416 && have > 0) return; // the part already holds the whole file
      if (res.status === 404) throw new FetchError(`${url}: HTTP 404 Not Found`);
      if (!res.ok || !res.body)
        throw new FetchError(`${url}: HTTP ${res.status} ${res.statusText}`, res.status >= 500 || res.status === 429);
      const resumed = res.status === 206 && have > 0;
      const length = Number(res.headers.get('content-length') ?? NaN);
      const total = Number.isFinite(length) ? length + (resumed ? have : 0) : null;
      let received = resumed ? have : 0;
      report(received, total);
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          received += chunk.length;
          report(received, total);
          done(null, chunk);
        },
      });
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        count,
        fs.createWriteStream(part, { flags: resumed ? 'a' : 'w' }),
      );
      if (total !== null && received !== total)
        throw new FetchError(`${url}: connection closed at ${received} of ${total} bytes`, true);
      return;
    } catch (err) {
      const retryable = err instanceof FetchError ? err.retryable : true; // network errors: the connection was cut
      if (!retryable || attempt >= attempts) {
        throw err instanceof FetchError
          ? err
          : new FetchError(
              `${url}: ${(err as Error).message} (after ${attempt} attempt${attempt > 1 ? 's' : ''}; run again to resume)`,
            );
      }
      await sleep((opts.retryDelayMs ?? 1000) * attempt);
    }
  }
}

/** Checks the part against the manifest's sha256, then renames it into place; a wrong part is deleted. */
async function verifyAndPlace(
  part: string,
  dest: string,
  file: WeightsFile,
): Promise<{ sha256: string; unverified: boolean }> {
  const sha256 = await sha256File(part);
  if (file.sha256 && sha256 !== file.sha256.toLowerCase()) {
    fs.rmSync(part, { force: true });
    throw new FetchError(
      `${file.name}: checksum mismatch (expected sha256 ${file.sha256}, got ${sha256}); nothing was installed`,
    );
  }
  fs.renameSync(part, dest);
  return { sha256, unverified: !file.sha256 };
}

function sourceOf(file: WeightsFile, opts: FetchOptions): { kind: 'url' | 'dir'; where: string } | null {
  if (opts.fromDir) return { kind: 'dir', where: path.join(opts.fromDir, file.name) };
  if (opts.mirror) return { kind: 'url', where: `${opts.mirror.replace(/\/+$/, '')}/${encodeURIComponent(file.name)}` };
  return file.url ? { kind: 'url', where: file.url } : null;
}

/** Fetches the first obtainable alternative of one model's `files` (none if one is present already). Errors name the model. */
export async function fetchModel(entry: ModelEntry, opts: FetchOptions = {}): Promise<FetchResult> {
  try {
    return await fetchFiles(entry, opts);
  } catch (err) {
    throw new FetchError(`${entry.manifest.name}: ${(err as Error).message}`);
  }
}

async function fetchFiles(entry: ModelEntry, opts: FetchOptions): Promise<FetchResult> {
  const model = entry.manifest.name;
  const files = entry.manifest.model.files;
  // Present: unless a downloadable alternative ranks above the file found (mobilenetv2 ships a
  // re-saved copy; the zoo's own file, listed first, is still fetched and then served instead).
  const found = entry.weightsFile && files ? files.indexOf(entry.weightsFile) : 0;
  const firstSource = files ? files.findIndex((f) => sourceOf(f, opts)) : -1;
  if (entry.weights === 'real' && entry.modelPath && (firstSource < 0 || found <= firstSource)) {
    return { model, status: 'present', file: entry.modelPath, sha256: await sha256File(entry.modelPath) };
  }
  if (!files)
    throw new FetchError(
      `its manifest names no downloadable files (model.files)${entry.manifest.reference ? `; ${entry.manifest.reference}` : ''}`,
    );
  const destDir = opts.weightsDir ?? entry.dir;
  fs.mkdirSync(destDir, { recursive: true });
  const problems: string[] = [];
  const candidates = entry.weights === 'real' && found >= 0 ? files.slice(0, found) : files;
  for (const file of candidates) {
    const source = sourceOf(file, opts);
    if (!source) {
      problems.push(`${file.name}: no url${file.how ? ` (${file.how})` : ''}`);
      continue;
    }
    const dest = path.join(destDir, file.name);
    const part = `${dest}.part`;
    if (source.kind === 'dir') {
      if (!fs.existsSync(source.where)) {
        problems.push(`${file.name}: not in ${opts.fromDir}`);
        continue;
      }
      fs.copyFileSync(source.where, part);
      const placed = await verifyAndPlace(part, dest, file);
      return { model, status: 'installed', file: dest, ...placed };
    }
    try {
      await download(source.where, part, opts, (received, total) =>
        opts.onProgress?.({ model, file: file.name, received, total }),
      );
    } catch (err) {
      // Not there: try the next alternative. Anything else is this model's failure.
      if (err instanceof FetchError && / 404 /.test(err.message)) {
        problems.push(err.message);
        continue;
      }
      throw err;
    }
    const placed = await verifyAndPlace(part, dest, file);
    return { model, status: 'downloaded', file: dest, ...placed };
  }
  throw new FetchError(`nothing could be fetched (${problems.join('; ')})`);
}

function progressBar(stream: NodeJS.WriteStream): (p: Progress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    const done = p.total !== null && p.received >= p.total;
    if (!done && now - last < 100) return;
    last = now;
    const mib = (n: number) => (n / 1048576).toFixed(1);
    if (p.total) {
      const share = Math.min(1, p.received / p.total);
      const width = 30;
      const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '.');
      stream.write(
        `\r${p.model}  ${p.file}  [${bar}] ${String(Math.floor(share * 100)).padStart(3)}%  ${mib(p.received)}/${mib(p.total)} MiB`,
      );
    } else {
      stream.write(`\r${p.model}  ${p.file}  ${mib(p.received)} MiB`);
    }
    if (done) stream.write('\n');
  };
}

export async function main(
  argv: string[],
  config: Config = loadConfig(),
  out: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { from: { type: 'string' } },
  });
  if (positionals.length === 0) {
    out.write('usage: npm run models:fetch -- <model…|all> [--from <dir>]\n');
    return 2;
  }
  const models = loadModelRepository(config);
  const wanted = positionals.includes('all')
    ? [...models.values()].filter((e) => e.manifest.model.files)
    : positionals.map((n) => models.get(n) ?? n);
  let failed = 0;
  for (const entry of wanted) {
    if (typeof entry === 'string') {
      out.write(`${entry}: no such model (models: ${[...models.keys()].join(', ')})\n`);
      failed++;
      continue;
    }
    try {
      const r = await fetchModel(entry, {
        weightsDir: config.MODELHUB_WEIGHTS_DIR,
        mirror: config.MODELHUB_WEIGHTS_MIRROR,
        fromDir: values.from,
        onProgress: out.isTTY ? progressBar(out) : undefined,
      });
      const note = r.unverified ? ' (the manifest gives no sha256: not verified)' : '';
      out.write(`${r.model}: ${r.status} ${r.file} sha256 ${r.sha256}${note}\n`);
    } catch (err) {
      out.write(`${(err as Error).message}\n`);
      failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
