/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core) against a real
 * API and worker: catalog → text-detection → upload a rendered text image → boxes drawn over it
 * where the words are, JSON shown; a classification drawn as bars; a non-image answered with the
 * spec error in words; the API-key prompt keeping the key in session storage only; the key's
 * usage against its quotas on the catalog. No page
 * errors anywhere. Screenshots go to test-artifacts/console/ (gitignored).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { startHub, type Hub } from '../helpers/hub.js';
import { boxIou, renderWords, type RenderedText } from '../helpers/text-image.js';

const CHROMIUM = '/usr/bin/chromium';
// Asynchronous: the API under test runs in this process, so a blocking exec would deadlock it.
const sh = async (script: string, cwd: string) =>
  (await promisify(execFile)('bash', ['-c', script], { cwd, encoding: 'utf8', timeout: 60_000 })).stdout;
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'console');
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`console tests skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)`);

let hub: Hub;
let profile: string;
let context: BrowserContext;
let words: RenderedText;
const problems: string[] = [];

async function launch(): Promise<BrowserContext> {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A page whose uncaught errors and console errors are recorded (refused requests the test makes on purpose aside). */
async function openPage(expectedStatuses: number[] = []): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const refused = /Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text());
    if (refused && expectedStatuses.includes(Number(refused[1]))) return;
    problems.push(`console error: ${msg.text()}`);
  });
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

describe.skipIf(!haveChromium)('web console', () => {
  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    hub = await startHub({ name: 'console', models: 'text-detection,text-direction' });
    context = await launch();
    words = await renderWords(480, 200, [
      { text: 'Queue', x: 40, y: 80, size: 48 },
      { text: 'Batch', x: 250, y: 165, size: 40 },
    ]);
  });
  afterAll(async () => {
    await context?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    await hub?.stop();
  });
  afterEach(() => {
    const found = problems.splice(0);
    expect(found).toEqual([]);
  });

  it('goes from the catalog to text-detection and draws the boxes of an uploaded text image', async () => {
    const page = await openPage();
    await page.goto(`${hub.url}/`);
    const row = page.locator('tr[data-model="text-detection"]');
    await expect.poll(() => row.locator('td.status').textContent()).toContain('ready');
    expect(await row.locator('td.num').first().textContent()).toBe('1');
    expect(await page.locator('tr[data-model="resnet50"] td.status').textContent()).toMatch(/no workers.*test weights/);
    await shot(page, '01-catalog');

    await row.locator('a.model-link').click();
    await page.waitForURL(`${hub.url}/models/text-detection`);
    await page.locator('#try-it').waitFor();
    expect(await page.locator('table.docs').first().textContent()).toContain('max_detections');

    await page.setInputFiles('#file', { name: 'words.png', mimeType: 'image/png', buffer: words.png });
    await page.click('#run');
    await page.locator('#job-status[data-status="succeeded"]').waitFor({ timeout: 30_000 });

    const rects = await page
      .locator('svg.boxes g.detection rect:first-child')
      .evaluateAll((els) => els.map((r) => ['x', 'y', 'width', 'height'].map((a) => Number(r.getAttribute(a)))));
    expect(rects).toHaveLength(2);
    for (const truth of words.boxes) {
      const best = Math.max(...rects.map(([x, y, w, h]) => boxIou([x, y, x + w, y + h], truth)));
      expect(best).toBeGreaterThanOrEqual(0.5);
    }
    expect(await page.locator('svg.boxes text').allTextContents()).toEqual([
      expect.stringMatching(/^text 0\.\d\d$/),
      expect.stringMatching(/^text 0\.\d\d$/),
    ]);
    // The raw JSON stays on the page, collapsible, with the spec fields.
    expect(await page.locator('details.raw').getAttribute('open')).not.toBeNull();
    const raw = await page.locator('#raw-json').textContent();
    expect(raw).toContain('"detection_boxes"');
    expect(raw).toContain('"status": "succeeded"');
    const jobId = await page.locator('#job-status').getAttribute('data-job-id');
    expect(await page.locator('#snippet-curl').textContent()).toContain(`/v1/jobs/${jobId}`);
    expect(await page.locator('#snippet-sdk').textContent()).toContain(`hub.submit("text-detection"`);
    await shot(page, '02-text-detection');

    // The snippets work as copied: curl from the folder holding the file, the CLI from the repository.
    const curl = (await page.locator('#snippet-curl').textContent())!;
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-snippet-'));
    try {
      fs.writeFileSync(path.join(folder, 'words.png'), words.png);
      const submitted = JSON.parse(await sh(curl.split('\n# read the job')[0], folder));
      expect(submitted).toMatchObject({
        model: 'text-detection',
        status: 'succeeded',
        output: { detection_class_names: ['text', 'text'] },
      });
      const cli = (await page.locator('#snippet-cli').textContent())!;
      expect(cli).toBe(`npx modelhub --url ${hub.url} predict text-detection 'words.png'`);
      const answer = JSON.parse(
        await sh(`${cli.replace("'words.png'", path.join(folder, 'words.png'))} --json`, REPO_ROOT),
      );
      expect(answer.detection_boxes).toHaveLength(2);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
    await page.close();
  });

  it('runs a classification and draws the top classes as bars', async () => {
    const page = await openPage();
    await page.goto(`${hub.url}/`);
    await page.locator('tr[data-model="text-direction"] a.model-link').click();
    await page.locator('#use-example').click();
    await page.locator('.preview img').waitFor();
    await page.click('#run');
    await page.locator('#job-status[data-status="succeeded"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('.bar-label').allTextContents()).toEqual(['180', '0']);
    expect(await page.locator('.bars .headline').textContent()).toMatch(/Top class: 180 \(id 1, 100\.00 %\)/);
    const widths = await page
      .locator('.bar')
      .evaluateAll((els) => els.map((e) => (e as HTMLElement).getBoundingClientRect().width));
    expect(widths[0]).toBeGreaterThan(widths[1] * 10);
    await shot(page, '03-text-direction');
    await page.close();
  });

  it('answers a non-image upload with the spec error in words', async () => {
    const page = await openPage([400]);
    await page.goto(`${hub.url}/models/text-detection`);
    await page.setInputFiles('#file', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('these are notes, not an image'),
    });
    await page.click('#run');
    const error = page.locator('#result .error');
    await error.waitFor();
    expect(await error.locator('.error-msg').textContent()).toMatch(/^image is not a decodable image file/);
    expect(await error.textContent()).toContain('error_code 1003 · HTTP 400');
    expect(await page.locator('#raw-json').textContent()).toContain('"error_code": 1003');
    // The formats offered are the catalog's (the hub refuses AVIF, so the console does not offer it).
    expect(await error.textContent()).toContain('Use a JPEG, PNG, WEBP, GIF or TIFF file.');
    expect(await page.locator('table.docs').first().textContent()).toContain(
      'base64 of an image file (JPEG, PNG, WEBP, GIF or TIFF)',
    );
    expect(await page.locator('#file').getAttribute('accept')).toBe(
      'image/jpeg,image/png,image/webp,image/gif,image/tiff',
    );
    await shot(page, '04-not-an-image');
    await page.close();
  });

  it('cancels a job that waits for a worker', async () => {
    const page = await openPage([409]);
    await page.goto(`${hub.url}/models/resnet50`);
    expect(await page.locator('.model-head .note').allTextContents()).toContainEqual(
      expect.stringContaining('No worker serves this model'),
    );
    await page.locator('#use-example').click();
    await page.locator('.preview img').waitFor();
    await page.click('#run');
    await expect.poll(() => page.locator('#job-status').textContent()).toMatch(/^queued · /);
    await page.click('#cancel-job');
    await page.locator('#job-status[data-status="canceled"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#result .error .error-msg').textContent()).toMatch(/cancel/);
    const jobId = await page.locator('#job-status').getAttribute('data-job-id');
    expect((await (await fetch(`${hub.url}/v1/jobs/${jobId}`)).json()).status).toBe('canceled');
    await shot(page, '05-canceled');
    await page.close();
  });

  it('asks for the API key when the hub needs one and keeps it in session storage only', async () => {
    const secured = await startHub({
      name: 'consolekeys',
      workers: 0,
      env: { MODELHUB_API_KEYS: 'k-console-0123456789:console' },
    });
    try {
      const page = await openPage([401]);
      await page.goto(`${secured.url}/`);
      await page.locator('#key-dialog[open]').waitFor();
      await shot(page, '06-key-prompt');
      await page.fill('#key-input', 'k-console-0123456789');
      await page.click('#key-form button[type=submit]');
      await page.locator('tr[data-model="text-detection"]').waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem('modelhub.apiKey'))).toBe('k-console-0123456789');
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      expect(await page.evaluate(() => document.cookie)).toBe('');
      // The catalog shows what the key holds: a job queued (no worker here) waits and holds its input.
      expect(await page.locator('.usage').textContent()).toContain('Nothing waiting or stored.');
      const image = words.png.toString('base64');
      const queued = await fetch(`${secured.url}/v1/models/text-detection/jobs`, {
        method: 'POST',
        headers: { Authorization: 'Bearer k-console-0123456789', 'content-type': 'application/json' },
        body: JSON.stringify({ input: { image } }),
      });
      expect(queued.status).toBe(202);
      const usageRow = page.locator('tr[data-usage-model="text-detection"]');
      await usageRow.waitFor({ timeout: 15_000 });
      expect(await usageRow.locator('td').allTextContents()).toEqual([
        'text-detection',
        '1 of 1000',
        expect.stringMatching(/^\d+ of 268435456 bytes$/),
      ]);
      await shot(page, '07-usage');
      // Another tab has its own session storage: it asks again.
      const other = await openPage([401]);
      await other.goto(`${secured.url}/`);
      await other.locator('#key-dialog[open]').waitFor();
      await other.close();
      await page.close();
    } finally {
      await secured.stop();
    }
  });
});
