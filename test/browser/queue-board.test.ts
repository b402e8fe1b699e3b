/**
 * The queue board in a real browser (Debian's Chromium driven by playwright-core) against a real
 * API (no worker: the jobs stay queued): an operator signs in with an admin key (HTTP Basic, the
 * key as the password), sees the model's queue with its waiting jobs, opens it and reads a job's
 * data with the input image elided, and cannot change a queue from its signed-in page; a tenant's
 * key is refused. Screenshots go to test-artifacts/queue-board/ (gitignored).
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'queue-board');
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(
    `queue board browser tests skipped: ${CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)`,
  );

const ADMIN = 'board-ui-admin-key-0001';
const TENANT = 'board-ui-tenant-key-001';

let hub: Hub;
let browser: Browser;
let image: string;
const contexts: BrowserContext[] = [];

/** A page signed in with `key` (HTTP Basic), recording page errors and unexpected console errors. */
async function pageAs(key: string, problems: string[]): Promise<Page> {
  const context = await browser.newContext({
    httpCredentials: { username: 'operator', password: key },
    viewport: { width: 1280, height: 900 },
  });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The board's page links a web font from Google; its Content-Security-Policy refuses it on purpose.
    if (/fonts\.googleapis\.com.*Content Security Policy/.test(msg.text())) return;
    problems.push(`console error: ${msg.text()}`);
  });
  return page;
}

describe.skipIf(!haveChromium)('queue board in a browser', () => {
  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    hub = await startHub({
      name: 'board-ui',
      models: 'text-direction',
      workers: 0,
      env: { MODELHUB_API_KEYS: `${ADMIN}:ops:admin,${TENANT}:acme` },
    });
    image = b64(await solidImage(40, 40, [200, 60, 30]));
    for (let i = 0; i < 2; i++) {
      const r = await postJson(
        `${hub.url}/v1/models/text-direction/jobs`,
        { input: { image } },
        { Authorization: `Bearer ${TENANT}` },
      );
      expect(r.status).toBe(202);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
    });
  });
  afterAll(async () => {
    for (const c of contexts) await c.close();
    await browser?.close();
    await hub?.stop();
  });

  it("an admin key opens it and sees the model's queue, its jobs' images elided, and cannot change it", async () => {
    const problems: string[] = [];
    const page = await pageAs(ADMIN, problems);
    const answer = await page.goto(`${hub.url}/admin/queues/`);
    expect(answer?.status()).toBe(200);
    // The overview: one card per queue; the model's shows its two waiting jobs.
    const card = page
      .locator('a, div')
      .filter({ hasText: /^text-direction\s*No workers\s*2 Jobs$/ })
      .first();
    await card.waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, '01-overview.png'), fullPage: true });

    await page.goto(`${hub.url}/admin/queues/queue/${encodeURIComponent('{model.text-direction}')}?status=prioritized`);
    const elided = page.getByText(`[image: ${image.length} base64 characters, not shown]`);
    await expect.poll(() => elided.count(), { timeout: 30_000 }).toBe(2);
    expect(await page.locator('h1, header').first().textContent()).toContain('text-direction');
    expect(await page.content()).not.toContain(image);
    await page.screenshot({ path: path.join(ARTIFACTS, '02-queue.png'), fullPage: true });
    // Whatever the UI offers, the signed-in browser itself cannot change a queue: its own request
    // to bull-board's pause and retry endpoints (same origin, the admin's credentials) is refused.
    const tried = await page.evaluate(async (queue) => {
      const statuses: number[] = [];
      for (const path of [`api/queues/${queue}/pause`, `api/queues/${queue}/retry/failed`, 'api/queues/pause'])
        statuses.push((await fetch(path, { method: 'PUT' })).status);
      return statuses;
    }, encodeURIComponent('{model.text-direction}'));
    expect(tried).toEqual([403, 403, 403]);
    problems.splice(0, problems.length, ...problems.filter((p) => !/status of 403/.test(p)));
    expect(problems).toEqual([]);
  });

  it("a tenant's key is refused", async () => {
    const problems: string[] = [];
    const page = await pageAs(TENANT, problems);
    const answer = await page.goto(`${hub.url}/admin/queues/`);
    expect(answer?.status()).toBe(403);
    expect(await page.locator('body').textContent()).toContain('the queue board is for admin keys only');
    await page.screenshot({ path: path.join(ARTIFACTS, '03-tenant-refused.png') });
    // Only the refused page itself (and the favicon the browser then asks for) failed to load.
    expect(problems.filter((p) => !/status of (403|404)/.test(p))).toEqual([]);
  });
});
