/**
 * Real pretrained weights on real photos, through the queue: ImageNet MobileNetV2, COCO YOLOv8n
 * (its file fixes the batch at 1) and YOLOv8n-seg, read in place from ../shared/weights
 * (MODELHUB_WEIGHTS_DIR). Skipped, saying so, when that folder is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRle, type Rle } from '../../worker/tasks/postprocess/mask-encoding.js';
import { getJson, metricValue, pollJob, postJson, startHub, startWorker, type Hub } from '../helpers/hub.js';
import { FIXTURE_WEIGHTS_DIR, NO_FIXTURES_MESSAGE, fixtureImage } from '../helpers/weights.js';

const SHA256 = {
  mobilenetv2: '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f',
  yolov8: '83de8f0d2cd521e00ae2b138c340a03dece35b060b3898509bdc69afff417312',
  'yolov8-seg': 'a892891617cbadd34d860f66a866393a8d4c487c49f1474e9b6d9e578332e56a',
};

describe.skipIf(!FIXTURE_WEIGHTS_DIR)(FIXTURE_WEIGHTS_DIR ? 'real weights on real photos' : NO_FIXTURES_MESSAGE, () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startHub({
      name: 'realweights',
      models: 'mobilenetv2,yolov8,yolov8-seg',
      env: { MODELHUB_WEIGHTS_DIR: FIXTURE_WEIGHTS_DIR! },
    });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  const catalog = async () =>
    Object.fromEntries(((await getJson(`${hub.url}/v1/models`)).body.models as any[]).map((m) => [m.name, m]));

  it('serves the three on their real files: weights "real", each file\'s sha256 in the catalog, /v1/workers and the metrics', async () => {
    // The worker's first heartbeat may trail its health check.
    let byName = await catalog();
    for (
      const deadline = Date.now() + 20_000;
      Object.keys(SHA256).some((m) => byName[m].workers < 1) && Date.now() < deadline;
    ) {
      await new Promise((r) => setTimeout(r, 200));
      byName = await catalog();
    }
    for (const [name, sha256] of Object.entries(SHA256)) {
      expect(byName[name]).toMatchObject({
        status: 'ready',
        weights: 'real',
        workers: 1,
        mixed_fleet: false,
        loaded: [{ sha256, kind: 'real', workers: 1 }],
      });
    }
    expect(byName.yolov8.license).toBe('AGPL-3.0 (Ultralytics)');
    // The YOLO files fix their batch at 1: the catalog says what the workers do, not the manifest's 8.
    expect(byName.yolov8.max_batch_size).toBe(1);
    expect(byName['yolov8-seg'].max_batch_size).toBe(1);
    expect(byName.mobilenetv2.max_batch_size).toBe(8);
    const [worker] = (await getJson(`${hub.url}/v1/workers`)).body.workers;
    expect(worker.weights.yolov8).toEqual({
      file: 'yolov8n-int8-640.onnx',
      sha256: SHA256.yolov8,
      kind: 'real',
      verification: 'verified',
    });
    expect(worker.batching.yolov8.max_batch_size).toBe(1);
    const page = await (await fetch(`${hub.workers[0].metricsUrl}/metrics`)).text();
    expect(
      metricValue(page, 'modelhub_model_weights_info', {
        model: 'mobilenetv2',
        sha256: SHA256.mobilenetv2,
        weights: 'real',
      }),
    ).toBe(1);
    expect(metricValue(page, 'modelhub_model_max_batch_size', { model: 'yolov8' })).toBe(1);
  });

  it('mobilenetv2: chelsea.png is a cat (ImageNet 281–285)', async () => {
    const { status, body } = await postJson(`${hub.url}/v1/models/mobilenetv2/predict`, {
      image: fixtureImage('chelsea'),
    });
    expect(status).toBe(200);
    expect(body.class).toBeGreaterThanOrEqual(281);
    expect(body.class).toBeLessThanOrEqual(285);
    expect(Object.keys(body.class_probs)).toHaveLength(1000);
    expect(body.class_probs[body.class_name]).toBeGreaterThan(0.3);
  });

  it('yolov8: astronaut.png has a person box covering the person', async () => {
    const { body } = await postJson(`${hub.url}/v1/models/yolov8/predict`, { image: fixtureImage('astronaut') });
    const i = (body.detection_class_names as string[]).indexOf('person');
    expect(i).toBe(0);
    expect(body.detection_scores[i]).toBeGreaterThan(0.5);
    const [y1, x1, y2, x2] = body.detection_boxes[i] as number[];
    // She stands left of centre, from near the top to the bottom edge of the 512 × 512 photo.
    expect(x1).toBeLessThan(60);
    expect(y1).toBeLessThan(60);
    expect(y2).toBeGreaterThan(480);
    expect(x2).toBeGreaterThan(300);
    expect(x2).toBeLessThan(420);
  });

  it('yolov8-seg: chelsea.png has a cat whose mask lies inside its box and covers most of it', async () => {
    const { body } = await postJson(`${hub.url}/v1/models/yolov8-seg/predict`, {
      image: fixtureImage('chelsea'),
      mask_encoding: 'rle',
    });
    const i = (body.detection_class_names as string[]).indexOf('cat');
    expect(i).toBeGreaterThanOrEqual(0);
    const rle = body.detection_masks[i] as Rle;
    expect(rle.size).toEqual([300, 451]);
    const mask = decodeRle(rle);
    const [y1, x1, y2, x2] = body.detection_boxes[i] as number[];
    let inside = 0;
    let outside = 0;
    mask.forEach((v, k) => {
      if (!v) return;
      const x = k % 451;
      const y = Math.floor(k / 451);
      if (x + 0.5 >= x1 && x + 0.5 <= x2 && y + 0.5 >= y1 && y + 0.5 <= y2) inside++;
      else outside++;
    });
    expect(outside).toBe(0);
    const share = inside / ((x2 - x1) * (y2 - y1));
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.98);
  });

  it('8 concurrent jobs to the batch-1 yolov8 all succeed through the queue, each in a batch of one', async () => {
    const image = fixtureImage('astronaut');
    const metricsUrl = `${hub.workers[0].metricsUrl}/metrics`;
    const before = metricValue(await (await fetch(metricsUrl)).text(), 'modelhub_batch_size_count', {
      model: 'yolov8',
    });
    const submitted = await Promise.all(
      Array.from({ length: 8 }, () => postJson(`${hub.url}/v1/models/yolov8/jobs`, { input: { image } })),
    );
    expect(submitted.map((s) => s.status)).toEqual(Array(8).fill(202));
    const jobs = await Promise.all(submitted.map((s) => pollJob(hub.url, s.body.id, 120_000)));
    expect(jobs.map((j) => j.status)).toEqual(Array(8).fill('succeeded'));
    for (const j of jobs) expect(j.output.detection_class_names[0]).toBe('person');
    const page = await (await fetch(metricsUrl)).text();
    expect(metricValue(page, 'modelhub_batch_size_count', { model: 'yolov8' }) - before).toBe(8);
    expect(metricValue(page, 'modelhub_batch_size_sum', { model: 'yolov8' })).toBe(
      metricValue(page, 'modelhub_batch_size_count', { model: 'yolov8' }),
    );
  });

  it('flags a mixed fleet: a second worker serving yolov8 from another file', async () => {
    // Same queue, the generated stand-in instead of the real file: its sha256 differs.
    const other = await startWorker({ ...hub.env, MODELHUB_TEST_MODELS: 'always' }, [
      '--device',
      'cpu',
      '--models',
      'yolov8',
    ]);
    hub.workers.push(other);
    const deadline = Date.now() + 20_000;
    let yolo: any;
    do {
      yolo = (await catalog()).yolov8;
      if (yolo.workers === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    expect(yolo.mixed_fleet).toBe(true);
    expect(yolo.loaded).toEqual(
      expect.arrayContaining([
        { file: 'yolov8n-int8-640.onnx', sha256: SHA256.yolov8, kind: 'real', verification: 'verified', workers: 1 },
        {
          file: 'yolov8-test.onnx',
          sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
          kind: 'test',
          verification: 'test',
          workers: 1,
        },
      ]),
    );
    expect((await catalog()).mobilenetv2.mixed_fleet).toBe(false);
  });
});
