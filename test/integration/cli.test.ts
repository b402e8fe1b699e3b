/**
 * The `modelhub` CLI as a user runs it (a child process, the shipped bin) against a real hub:
 * tables and --json, predict from image files and text, submit/job/cancel, progress while
 * waiting, --url/--key and their environment variables, exit codes with the spec error.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { renderWords } from '../helpers/text-image.js';

const CLI = path.join(REPO_ROOT, 'clients/typescript/lib/cli.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  args: string[],
  env: Record<string, string | undefined> = {},
  command = [process.execPath, CLI],
): Promise<Result> {
  return new Promise((resolve) => {
    const [file, ...pre] = command;
    const childEnv: Record<string, string | undefined> = {
      ...process.env,
      MODELHUB_URL: hub.url,
      MODELHUB_API_KEY: '',
      ...env,
    };
    for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
    execFile(
      file,
      [...pre, ...args],
      { env: childEnv as NodeJS.ProcessEnv, cwd: REPO_ROOT, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

let hub: Hub;
let dir: string;
let wordsPng: string;
beforeAll(async () => {
  hub = await startHub({ name: 'cli', models: 'text-direction,text-detection,bert-base-chinese' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-cli-'));
  wordsPng = path.join(dir, 'words.png');
  fs.writeFileSync(
    wordsPng,
    (
      await renderWords(320, 120, [
        { text: 'Queue', x: 20, y: 50, size: 32 },
        { text: 'Batch', x: 170, y: 100, size: 28 },
      ])
    ).png,
  );
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an image at all\n');
});
afterAll(async () => {
  await hub?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const example = (model: string) => path.join(REPO_ROOT, 'models', model, 'example.png');

describe('modelhub CLI', () => {
  it('npx modelhub runs the bin of this package', async () => {
    const r = await run(['--help'], {}, ['npx', '--no-install', 'modelhub']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: modelhub/);
  });

  it('models: a table by default, the catalog with --json', async () => {
    const table = await run(['models']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual([
      'NAME',
      'TASK',
      'STATUS',
      'WEIGHTS',
      'WORKERS',
      'WAITING',
      'RUNNING',
      'DESCRIPTION',
    ]);
    expect(lines.find((l) => l.startsWith('text-direction '))).toMatch(
      /^text-direction\s+image-classification\s+ready\s+real\s+1\s+0\s+0\s+Text direction/,
    );
    const json = JSON.parse((await run(['models', '--json'])).stdout);
    expect(json.models.find((m: { name: string }) => m.name === 'resnet50')).toMatchObject({
      status: 'no_workers',
      workers: 0,
    });
  });

  it('predict <model> <image-file>: a summary, or the spec output itself with --json', async () => {
    const human = await run(['predict', 'text-direction', example('text-direction')]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^class 1 \(180\)\nCLASS\s+PROBABILITY\n180\s+/);
    const json = await run(['predict', 'text-detection', wordsPng, '--json', '-p', 'max_detections=5']);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(Object.keys(out).sort()).toEqual([
      'detection_boxes',
      'detection_class_names',
      'detection_classes',
      'detection_scores',
      'error_code',
      'request_id',
      'success',
    ]);
    expect(out.detection_class_names).toEqual(['text', 'text']);
    const boxes = await run(['predict', 'text-detection', wordsPng]);
    expect(boxes.stdout).toMatch(
      /^2 detection\(s\)\n#\s+CLASS\s+SCORE\s+BOX \[y1, x1, y2, x2\]\n1\s+text \(1\)\s+0\.\d+\s+\[/,
    );
  });

  it('predict --text/--pair on a text model', async () => {
    const r = await run([
      'predict',
      'bert-base-chinese',
      '--text',
      '双十一花呗提额在哪',
      '--pair',
      '借呗',
      '--sequence-length',
      '16',
      '--output-schema',
      'pool_output,first_token_output',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(typeof out.pool_output).toBe('string');
    expect(out.first_token_output.split(',').length).toBe(out.pool_output.split(',').length);
    const human = await run(['predict', 'bert-base-chinese', '--text', '花呗']);
    expect(human.stdout).toMatch(/^pool_output: dimension \d+, norm [\d.]+, first values /);
  });

  it('a non-image exits 1 with the spec error in words (and as JSON with --json)', async () => {
    const r = await run(['predict', 'text-direction', path.join(dir, 'notes.txt')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^modelhub: error 1003 \(HTTP 400\): image is not a decodable image/);
    const json = await run(['predict', 'text-direction', path.join(dir, 'notes.txt'), '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ success: false, error_code: 1003 });
  });

  it('submit, job and cancel; submit --wait shows progress and the output', async () => {
    const submitted = await run([
      'submit',
      'resnet50',
      example('resnet50'),
      '--priority',
      '3',
      '--timeout',
      '600',
      '--json',
    ]);
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout);
    expect(job.status).toBe('queued');
    const shown = await run(['job', job.id]);
    expect(shown.stdout).toMatch(new RegExp(`^id\\s+${job.id}\\nmodel\\s+resnet50\\nstatus\\s+queued\\n`));
    const canceled = await run(['cancel', job.id]);
    expect(canceled.code).toBe(0);
    expect(canceled.stdout).toMatch(/status\s+canceled/);
    const again = await run(['cancel', job.id, '--json']);
    expect(JSON.parse(again.stdout).status).toBe('canceled');

    const waited = await run(['submit', 'text-direction', example('text-direction'), '--wait']);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/status\s+succeeded[\s\S]*class 1 \(180\)/);
    expect(waited.stderr).toMatch(
      /^job [\w-]+: queued \([\d.]+ s\)\n(job [\w-]+: running \([\d.]+ s\)\n)?job [\w-]+: succeeded \([\d.]+ s\)\n$/,
    );

    const later = JSON.parse((await run(['submit', 'text-direction', example('text-direction'), '--json'])).stdout);
    const read = await run(['job', later.id, '--wait', '--json']);
    expect(JSON.parse(read.stdout)).toMatchObject({ id: later.id, status: 'succeeded', output: { class_name: '180' } });
  });

  it('submit --webhook reaches the hub (which refuses it here: no WEBHOOK_SECRET)', async () => {
    const r = await run([
      'submit',
      'text-direction',
      example('text-direction'),
      '--webhook',
      'https://client.example/hook',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error 1006 \(HTTP 400\): webhooks are not enabled/);
  });

  it('--url and --key override MODELHUB_URL and MODELHUB_API_KEY', async () => {
    const secured = await startHub({
      name: 'clikeys',
      workers: 0,
      env: { MODELHUB_API_KEYS: 'k-beta-0123456789abc:beta' },
    });
    try {
      const denied = await run(['models'], { MODELHUB_URL: secured.url });
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/error 1101 \(HTTP 401\): missing API key/);
      expect(
        (await run(['models'], { MODELHUB_URL: secured.url, MODELHUB_API_KEY: 'k-beta-0123456789abc' })).code,
      ).toBe(0);
      expect(
        (
          await run(['models', '--url', secured.url, '--key', 'k-beta-0123456789abc'], {
            MODELHUB_URL: 'http://127.0.0.1:9',
          })
        ).code,
      ).toBe(0);
    } finally {
      await secured.stop();
    }
  });

  it('batch submit --wait from JSONL and image files, batch results --order input, batch <id>', async () => {
    const image = fs.readFileSync(example('text-direction')).toString('base64');
    const jsonl = path.join(dir, 'inputs.jsonl');
    fs.writeFileSync(jsonl, [0, 1, 2].map(() => JSON.stringify({ image })).join('\n') + '\n');
    const waited = await run(['batch', 'submit', 'text-direction', jsonl, '--priority', '3', '--wait', '--json']);
    expect(waited.code).toBe(0);
    const batch = JSON.parse(waited.stdout);
    expect(batch).toMatchObject({
      object: 'batch',
      model: 'text-direction',
      status: 'completed',
      counts: { total: 3, succeeded: 3, failed: 0 },
    });
    expect(waited.stderr).toMatch(new RegExp(`batch ${batch.id}: completed, 3/3 done\n$`));
    const results = await run(['batch', 'results', batch.id, '--order', 'input', '--json']);
    expect(results.code).toBe(0);
    const lines = results.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l: { index: number; status: string }) => [l.index, l.status])).toEqual([
      [0, 'succeeded'],
      [1, 'succeeded'],
      [2, 'succeeded'],
    ]);
    expect(lines[0].output.class_name).toBe('180');
    const tableOut = await run(['batch', 'results', batch.id, '--order', 'input']);
    expect(tableOut.stdout.split('\n')[0].split(/\s{2,}/)).toEqual(['INDEX', 'STATUS', 'RESULT']);
    const shown = await run(['batch', batch.id]);
    expect(shown.stdout).toMatch(
      new RegExp(`^id\\s+${batch.id}\\nmodel\\s+text-direction\\nstatus\\s+completed\\nitems\\s+3: 3 succeeded`),
    );

    const files = await run([
      'batch',
      'submit',
      'text-direction',
      example('text-direction'),
      example('text-direction'),
      '--wait',
      '--json',
    ]);
    expect(JSON.parse(files.stdout)).toMatchObject({ status: 'completed', counts: { total: 2, succeeded: 2 } });
    expect((await run(['batch', 'results', batch.id, '--order', 'sideways'])).code).toBe(2);
    expect((await run(['batch', 'submit', 'text-direction'])).code).toBe(2);
  });

  it('batch cancel on a hub without workers cancels every item; --wait-timeout exits 4', async () => {
    const idle = await startHub({ name: 'clibatch', models: 'text-direction', workers: 0 });
    try {
      const submitted = await run(
        ['batch', 'submit', 'text-direction', example('text-direction'), example('text-direction'), '--json'],
        { MODELHUB_URL: idle.url },
      );
      expect(submitted.code).toBe(0);
      const batch = JSON.parse(submitted.stdout);
      expect(batch.status).toBe('queued');
      const timedOut = await run(['batch', batch.id, '--wait', '--wait-timeout', '0.5'], { MODELHUB_URL: idle.url });
      expect(timedOut.code).toBe(4);
      expect(timedOut.stderr).toMatch(/still queued after the wait limit/);
      const canceled = await run(['batch', 'cancel', batch.id], { MODELHUB_URL: idle.url });
      expect(canceled.code).toBe(0);
      expect(canceled.stdout).toMatch(
        /status\s+canceled\nitems\s+2: 0 succeeded, 0 failed, 2 canceled, 0 running, 0 queued/,
      );
      const json = await run(['batch', batch.id, '--json'], { MODELHUB_URL: idle.url });
      expect(JSON.parse(json.stdout)).toMatchObject({
        id: batch.id,
        status: 'canceled',
        counts: { total: 2, canceled: 2, queued: 0 },
      });
    } finally {
      await idle.stop();
    }
  });

  it('usage errors exit 2; an unreachable hub exits 3', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['predict', 'text-direction'])).code).toBe(2);
    expect((await run(['models', '--bogus'])).code).toBe(2);
    const down = await run(['models', '--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot reach the hub at http:\/\/127\.0\.0\.1:9/);
  });
});
