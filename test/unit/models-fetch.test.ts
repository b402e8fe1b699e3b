/**
 * npm run models:fetch against a local HTTP server (never the internet): resume after a cut
 * connection, checksum verified before the file is moved into place, 404, mirror, --from.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../shared/config.js';
import { loadModel } from '../../shared/manifest.js';
import { fetchModel, main } from '../../models/tools/fetch-weights.js';

const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const sha = createHash('sha256').update(payload).digest('hex');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-fetch-'));
let server: http.Server;
let base = '';
const requests: Array<{ url: string; range?: string }> = [];
const cutOnce = new Set<string>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push({ url: req.url!, range: req.headers.range });
    const name = path.basename(req.url!);
    if (!req.url!.startsWith('/files/') && !req.url!.startsWith('/mirror/') && !req.url!.startsWith('/cut/')) {
      res.writeHead(404).end();
      return;
    }
    if (name.startsWith('missing')) {
      res.writeHead(404).end('not here');
      return;
    }
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const body = payload.subarray(start);
    res.writeHead(start > 0 ? 206 : 200, {
      'content-length': body.length,
      ...(start > 0 ? { 'content-range': `bytes ${start}-${payload.length - 1}/${payload.length}` } : {}),
    });
    if (req.url!.startsWith('/cut/') && !cutOnce.has(req.url!)) {
      // The first answer stops a third of the way in: the connection is cut.
      cutOnce.add(req.url!);
      res.write(body.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 300));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(root, { recursive: true, force: true });
});

function model(name: string, files: Array<Record<string, string>>): string {
  const dir = path.join(root, 'models', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      name,
      task: 'image-classification',
      model: { files },
      inputs: { image: 'x' },
      outputs: { scores: 'y' },
      preprocess: { resize: { mode: 'stretch', width: 8, height: 8 } },
    }),
  );
  return dir;
}
const config = loadConfig({});
const quick = { attempts: 3, retryDelayMs: 10 };

describe('models:fetch', () => {
  it('resumes a cut download with a Range request, verifies the checksum, then moves the file into place', async () => {
    const dir = model('cut', [{ name: 'cut.onnx', url: `${base}/cut/cut.onnx`, sha256: sha }]);
    const seen: number[] = [];
    const r = await fetchModel(loadModel(dir, config), { ...quick, onProgress: (p) => seen.push(p.received) });
    expect(r).toMatchObject({ status: 'downloaded', file: path.join(dir, 'cut.onnx'), sha256: sha });
    expect(fs.readFileSync(path.join(dir, 'cut.onnx')).equals(payload)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'cut.onnx.part'))).toBe(false);
    const tries = requests.filter((q) => q.url === '/cut/cut.onnx');
    // The second request asks only for what the first did not bring.
    expect(tries).toHaveLength(2);
    expect(tries[0].range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(tries[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(100_000);
    expect(seen.at(-1)).toBe(payload.length);
    // Present now: nothing is downloaded again.
    expect(await fetchModel(loadModel(dir, config), quick)).toMatchObject({ status: 'present', sha256: sha });
    expect(requests.filter((q) => q.url === '/cut/cut.onnx')).toHaveLength(2);
  });

  it('never installs a file whose checksum is wrong, and leaves no part behind', async () => {
    const dir = model('wrongsum', [{ name: 'w.onnx', url: `${base}/files/w.onnx`, sha256: '0'.repeat(64) }]);
    await expect(fetchModel(loadModel(dir, config), quick)).rejects.toThrow(
      `w.onnx: checksum mismatch (expected sha256 ${'0'.repeat(64)}, got ${sha}); nothing was installed`,
    );
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });

  it('a 404 moves on to the next alternative; with none left the model fails, naming each', async () => {
    const dir = model('alts', [
      { name: 'missing.onnx', url: `${base}/files/missing.onnx` },
      { name: 'second.onnx', url: `${base}/files/second.onnx`, sha256: sha },
    ]);
    expect(await fetchModel(loadModel(dir, config), quick)).toMatchObject({
      status: 'downloaded',
      file: path.join(dir, 'second.onnx'),
    });
    const gone = model('gone', [
      { name: 'missing-a.onnx', url: `${base}/files/missing-a.onnx` },
      { name: 'nourl.onnx', how: 'export it yourself' },
    ]);
    await expect(fetchModel(loadModel(gone, config), quick)).rejects.toThrow(
      /gone: nothing could be fetched \(.*missing-a\.onnx: HTTP 404 Not Found; nourl\.onnx: no url \(export it yourself\)\)/,
    );
    expect(fs.readdirSync(gone)).toEqual(['manifest.json']);
  });

  it('the CLI: a mirror replaces the urls, downloads go to MODELHUB_WEIGHTS_DIR, --from installs from a folder, failures exit 1', async () => {
    model('mirrored', [{ name: 'm.onnx', url: 'https://unreachable.invalid/m.onnx', sha256: sha }]);
    const weightsDir = path.join(root, 'weights');
    const lines: string[] = [];
    // A terminal: the progress bar is drawn.
    const out = Object.assign(new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }), {
      isTTY: true,
    }) as unknown as NodeJS.WriteStream;
    const cli = (argv: string[], env: Record<string, string>) =>
      main(argv, loadConfig({ MODELHUB_MODELS_DIR: path.join(root, 'models'), ...env }), out);
    expect(
      await cli(['mirrored'], { MODELHUB_WEIGHTS_DIR: weightsDir, MODELHUB_WEIGHTS_MIRROR: `${base}/mirror/` }),
    ).toBe(0);
    expect(requests.at(-1)!.url).toBe('/mirror/m.onnx');
    expect(fs.readFileSync(path.join(weightsDir, 'm.onnx')).equals(payload)).toBe(true);
    expect(lines.join('')).toContain(`mirrored: downloaded ${path.join(weightsDir, 'm.onnx')} sha256 ${sha}`);
    expect(lines.join('')).toContain(`\rmirrored  m.onnx  [${'#'.repeat(30)}] 100%  0.3/0.3 MiB\n`);

    const from = path.join(root, 'from');
    fs.mkdirSync(from);
    fs.writeFileSync(path.join(from, 'f.onnx'), payload);
    const dir = model('offline', [{ name: 'f.onnx', url: 'https://unreachable.invalid/f.onnx', sha256: sha }]);
    const before = requests.length;
    expect(await cli(['offline', '--from', from], {})).toBe(0);
    expect(requests.length).toBe(before);
    expect(fs.readFileSync(path.join(dir, 'f.onnx')).equals(payload)).toBe(true);

    expect(await cli(['nosuchmodel'], {})).toBe(1);
    expect(lines.join('')).toMatch(/nosuchmodel: no such model/);
    expect(await cli([], {})).toBe(2);
  });

  it('fetches an alternative listed above the file present (the zoo file above a shipped copy), then serves it', async () => {
    const shipped = Buffer.from('a re-saved copy');
    const shippedSha = createHash('sha256').update(shipped).digest('hex');
    const dir = model('ranked', [
      { name: 'zoo.onnx', url: `${base}/files/zoo.onnx`, sha256: sha },
      { name: 'shipped.onnx', sha256: shippedSha },
    ]);
    fs.writeFileSync(path.join(dir, 'shipped.onnx'), shipped);
    expect(loadModel(dir, config).modelPath).toBe(path.join(dir, 'shipped.onnx'));
    expect(await fetchModel(loadModel(dir, config), quick)).toMatchObject({
      status: 'downloaded',
      file: path.join(dir, 'zoo.onnx'),
      sha256: sha,
    });
    expect(loadModel(dir, config).modelPath).toBe(path.join(dir, 'zoo.onnx'));
    expect(await fetchModel(loadModel(dir, config), quick)).toMatchObject({ status: 'present', sha256: sha });
  });

  it("the seed's models name the ONNX Model Zoo's URLs and sha256: a file with other bytes is refused", async () => {
    const ZOO = 'https://github.com/onnx/models/raw/main/validated/vision/';
    const expected = {
      resnet50: [
        `${ZOO}classification/resnet/model/resnet50-v2-7.onnx`,
        '79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31',
      ],
      'faster-rcnn': [
        `${ZOO}object_detection_segmentation/faster-rcnn/model/FasterRCNN-10.onnx`,
        'dfb81423efbea52e45df242ade64cfca0ba05fae78e00cf0c68a0979987f87eb',
      ],
      'mask-rcnn': [
        `${ZOO}object_detection_segmentation/mask-rcnn/model/MaskRCNN-10.onnx`,
        'a519d8102cb162e78cbf123615aa5a8f3bf9d0fa1dec61a2fbbb42fa3f0e0757',
      ],
      mobilenetv2: [
        `${ZOO}classification/mobilenet/model/mobilenetv2-12-int8.onnx`,
        'cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f',
      ],
    };
    const repo = loadConfig({ MODELHUB_MODELS_DIR: path.join(REPO_ROOT, 'models') });
    for (const [name, [url, sha256]] of Object.entries(expected)) {
      const [first] = loadModel(path.join(REPO_ROOT, 'models', name), repo).manifest.model.files!;
      expect(first).toMatchObject({ url, sha256 });
    }
    // Through the CLI, a local mirror serving other bytes under the zoo's names: each refused by digest.
    const weightsDir = path.join(root, 'zoo-weights');
    const lines: string[] = [];
    const out = new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }) as NodeJS.WriteStream;
    const code = await main(
      Object.keys(expected),
      loadConfig({
        MODELHUB_MODELS_DIR: path.join(REPO_ROOT, 'models'),
        MODELHUB_WEIGHTS_DIR: weightsDir,
        MODELHUB_WEIGHTS_MIRROR: `${base}/mirror`,
      }),
      out,
    );
    expect(code).toBe(1);
    for (const [name, [url, sha256]] of Object.entries(expected)) {
      expect(requests.some((q) => q.url === `/mirror/${path.basename(url)}`)).toBe(true);
      expect(lines.join('')).toContain(
        `${name}: ${path.basename(url)}: checksum mismatch (expected sha256 ${sha256}, got ${sha}); nothing was installed`,
      );
    }
    expect(fs.readdirSync(weightsDir)).toEqual([]);
  });
});
