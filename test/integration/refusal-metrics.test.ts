/**
 * Issue 26: `modelhub_jobs_rejected_total` was on the dashboard but never incremented, and the
 * 401s and 429s decided before routing were counted as `route="unmatched"`. Here every kind of
 * refused submission is made once against a real API (no worker: jobs stay queued) and the
 * counter must say exactly that, by model, route, error code and reason; accepted submissions
 * and errors about jobs already accepted (predict's wait running out) are not refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SVG_BOMB } from '../../bench/lib/hostile-mix.js';
import { metricValue, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';

const ADMIN = 'refusals-admin-key-0001';
const ALICE = 'refusals-alice-key-0001';
const BOB = 'refusals-bob-key-000001';
const SLOW = 'refusals-slow-key-00001';
const as = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });

/** Every series of one metric on a page: its labels and value. */
function series(page: string, name: string): { labels: Record<string, string>; value: number }[] {
  return page
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .map((line) => {
      const m = /^[\w:]+\{([^}]*)\}\s+(\S+)$/.exec(line)!;
      const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      return { labels, value: Number(m[2]) };
    });
}

describe('refused submissions in the metrics', () => {
  let hub: Hub;
  let image: string;
  beforeAll(async () => {
    hub = await startHub({
      name: 'refusals',
      models: 'resnet50',
      workers: 0,
      env: {
        MODELHUB_API_KEYS: `${ADMIN}:ops:admin,${ALICE}:alice,${BOB}:bob,${SLOW}:slow`,
        QUEUE_MAX_WAITING: '5',
        TENANT_MAX_WAITING: '2',
        PREDICT_WAIT_S: '1',
        MODELHUB_TENANT_LIMITS: JSON.stringify({ slow: { rate_rps: 1 } }),
      },
    });
    image = b64(await solidImage(32, 32, [90, 30, 10]));
  });
  afterAll(async () => hub?.stop());

  const jobs = (model = 'resnet50') => `${hub.url}/v1/models/${model}/jobs`;

  it('counts each refusal by model, route, error code and reason, and labels its request with its route', async () => {
    const expectStatus = async (p: Promise<{ status: number }>, status: number) =>
      expect((await p).status).toBe(status);
    // An error about a job already accepted is not a refusal (504, with the job's id).
    const timedOut = await postJson(`${hub.url}/v1/models/resnet50/predict`, { image }, as(ADMIN));
    expect(timedOut).toMatchObject({ status: 504, body: { error_code: 1502, request_id: expect.any(String) } });
    // Accepted: not refusals. Alice fills her own quota (2), then Bob the model's queue (5 with the predict's job).
    for (const key of [ALICE, ALICE]) await expectStatus(postJson(jobs(), { input: { image } }, as(key)), 202);
    await expectStatus(postJson(jobs(), { input: { image } }, as(ALICE)), 429); // her own waiting quota
    for (const key of [BOB, BOB]) await expectStatus(postJson(jobs(), { input: { image } }, as(key)), 202);
    await expectStatus(postJson(jobs(), { input: { image } }, as(ADMIN)), 429); // the model's queue is full

    await expectStatus(postJson(jobs(), { input: { image } }), 401); // no key
    await expectStatus(postJson(jobs(), { input: { image } }, as('not-a-key-of-this-hub')), 401);
    await expectStatus(postJson(jobs(), { input: { image: 'bm90IGFuIGltYWdl' } }, as(ADMIN)), 400); // not an image
    await expectStatus(postJson(jobs(), { input: { image: SVG_BOMB.toString('base64') } }, as(ADMIN)), 415);
    await expectStatus(postJson(jobs(), { input: { image }, priority: 1 }, as(ALICE)), 400); // over her ceiling
    await expectStatus(postJson(jobs('no-such-model'), { input: { image } }, as(ADMIN)), 404);
    await expectStatus(postJson(`${hub.url}/v1/models/resnet50/predict`, '{"image": ', as(ADMIN)), 400); // not JSON
    await expectStatus(
      postJson(`${hub.url}/v1/models/resnet50/batches`, { inputs: [{ image }], priority: 1 }, as(BOB)),
      400,
    );
    // The rate limit: a burst of 2 at 1 request/s, so of 6 sent at once some are refused (429) and
    // the others fail validation (400: no image).
    const slow = (await Promise.all([0, 1, 2, 3, 4, 5].map(() => postJson(jobs(), { input: {} }, as(SLOW))))).map(
      (r) => r.status,
    );
    const limited = slow.filter((s) => s === 429).length;
    expect(limited).toBeGreaterThan(0);
    expect(slow.filter((s) => s === 400).length).toBe(6 - limited);

    const page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    const refused = series(page, 'modelhub_jobs_rejected_total')
      .map(({ labels, value }) => `${labels.model} ${labels.route} ${labels.error_code} ${labels.reason} ${value}`)
      .sort();
    expect(refused).toEqual(
      [
        'resnet50 /v1/models/:model/jobs 1101 unauthorized 2',
        'resnet50 /v1/models/:model/jobs 1003 invalid_image 1',
        'resnet50 /v1/models/:model/jobs 1007 unsupported_image_format 1',
        'resnet50 /v1/models/:model/jobs 1006 invalid_option 1',
        'resnet50 /v1/models/:model/jobs 1402 tenant_waiting 1',
        'resnet50 /v1/models/:model/jobs 1401 queue_full 1',
        '_unknown /v1/models/:model/jobs 1201 model_not_found 1',
        'resnet50 /v1/models/:model/predict 1001 bad_json 1',
        'resnet50 /v1/models/:model/batches 1006 invalid_option 1',
        `resnet50 /v1/models/:model/jobs 1002 invalid_input ${6 - limited}`,
        `resnet50 /v1/models/:model/jobs 1403 tenant_requests ${limited}`,
      ].sort(),
    );
    // The requests refused before any route ran carry their route, not "unmatched".
    const requests = (status: string) =>
      metricValue(page, 'modelhub_http_requests_total', { route: '/v1/models/:model/jobs', status });
    expect(requests('401')).toBe(2);
    expect(requests('429')).toBe(2 + limited);
    expect(requests('202')).toBe(4);
    expect(
      metricValue(page, 'modelhub_http_requests_total', { route: '/v1/models/:model/predict', status: '400' }),
    ).toBe(1);
    expect(series(page, 'modelhub_http_requests_total').filter((s) => s.labels.route === 'unmatched')).toEqual([]);
  });

  it('still labels unknown paths "unmatched", with or without a key', async () => {
    expect((await fetch(`${hub.url}/v1/nothing-here`)).status).toBe(401);
    expect((await fetch(`${hub.url}/v1/nothing-here`, { headers: as(ADMIN) })).status).toBe(404);
    expect((await fetch(`${hub.url}/metrics`)).status).toBe(404); // the metrics listener is elsewhere
    const page = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
    expect(metricValue(page, 'modelhub_http_requests_total', { route: 'unmatched', status: '401' })).toBe(1);
    expect(metricValue(page, 'modelhub_http_requests_total', { route: 'unmatched', status: '404' })).toBe(2);
  });
});
