/**
 * Detection, segmentation and text vectors through the real queue and a worker process:
 * exact spec fields and shapes, request options validated at the door, BERT batched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  metricValue,
  pollJob,
  postJson,
  startHub,
  whileWorkerHeld,
  type Hub,
  type WorkerProcess,
} from '../helpers/hub.js';
import { boxIou, renderWords } from '../helpers/text-image.js';

let hub: Hub<WorkerProcess>;
beforeAll(async () => {
  hub = await startHub({
    workerProcesses: true,
    name: 'visiontext',
    models: 'text-detection,text-segmentation,text-instances,bert-base-chinese',
  });
});
afterAll(async () => hub?.stop());

const W = 320;
const H = 120;
let rendered: Awaited<ReturnType<typeof renderWords>>;
beforeAll(async () => {
  rendered = await renderWords(W, H, [
    { text: 'Queue', x: 20, y: 50, size: 32 },
    { text: 'Batch', x: 170, y: 100, size: 28 },
  ]);
});
const predict = (model: string, body: unknown) => postJson(`${hub.url}/v1/models/${model}/predict`, body);
const image = () => rendered.png.toString('base64');

describe('vision tasks through the queue', () => {
  it('text-detection answers §1.2: [y1,x1,y2,x2] boxes in input pixels covering each word', async () => {
    const r = await predict('text-detection', { image: image() });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual([
      'detection_boxes',
      'detection_class_names',
      'detection_classes',
      'detection_scores',
      'error_code',
      'metrics',
      'request_id',
      'success',
    ]);
    const n = r.body.detection_boxes.length;
    expect(n).toBe(2);
    expect(r.body.detection_scores).toHaveLength(n);
    expect(r.body.detection_classes).toEqual([1, 1]);
    expect(r.body.detection_class_names).toEqual(['text', 'text']);
    for (const truth of rendered.boxes) {
      const ious = r.body.detection_boxes.map(([y1, x1, y2, x2]: number[]) => boxIou([x1, y1, x2, y2], truth));
      expect(Math.max(...ious)).toBeGreaterThanOrEqual(0.5);
    }
  });

  it('text-instances answers §1.4 with [N, H, W] boolean masks, or RLE on request', async () => {
    const plain = await predict('text-instances', { image: image() });
    const masks = plain.body.detection_masks as boolean[][][];
    expect(masks).toHaveLength(plain.body.detection_boxes.length);
    for (const m of masks) {
      expect(m).toHaveLength(H);
      expect(m.every((row) => row.length === W && row.every((v) => typeof v === 'boolean'))).toBe(true);
    }
    const rle = await predict('text-instances', { image: image(), mask_encoding: 'rle' });
    expect(rle.body.detection_masks[0]).toMatchObject({ size: [H, W], counts: expect.any(Array) });
    const ones = (m: boolean[][]) => m.flat().filter(Boolean).length;
    const rleOnes = (r: { counts: number[] }) => r.counts.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0);
    expect(rleOnes(rle.body.detection_masks[0])).toBe(ones(masks[0]));
  });

  it('text-segmentation answers §1.3: probs and preds at the input size', async () => {
    const r = await predict('text-segmentation', { image: image() });
    expect(Object.keys(r.body).sort()).toEqual(['error_code', 'metrics', 'preds', 'probs', 'request_id', 'success']);
    expect(r.body.preds).toHaveLength(H);
    expect(r.body.probs[0]).toHaveLength(W);
    const [x1, y1, x2, y2] = rendered.boxes[0];
    const cy = Math.round((y1 + y2) / 2);
    const cx = Math.round((x1 + x2) / 2);
    expect(r.body.preds[cy][cx] === 1 || r.body.preds[cy][cx + 2] === 1 || r.body.preds[cy][cx - 2] === 1).toBe(true);
    expect(r.body.preds[5][5]).toBe(0);
    expect(r.body.probs[5][5]).toBeGreaterThan(0.5);
  });

  it('refuses bad options at the door with spec errors', async () => {
    for (const body of [
      { image: image(), score_threshold: 2 },
      { image: image(), max_detections: 0 },
      { image: image(), mask_encoding: 'zip' },
    ]) {
      const r = await postJson(`${hub.url}/v1/models/text-instances/jobs`, { input: body });
      expect(r.status).toBe(400);
      expect(r.body.success).toBe(false);
    }
  });
});

describe('text vectors through the queue', () => {
  it('answers the spec example with the three fields in the spec string format', async () => {
    const example = (await getJson(`${hub.url}/v1/models/bert-base-chinese/example`)).body;
    expect(example).toEqual({
      first_sequence: '双十一花呗提额在哪',
      second_sequence: '',
      sequence_length: 128,
      output_schema: 'pool_output,first_token_output,all_hidden_outputs',
    });
    const r = await predict('bert-base-chinese', example);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual([
      'all_hidden_outputs',
      'error_code',
      'first_token_output',
      'metrics',
      'pool_output',
      'request_id',
      'success',
    ]);
    const number = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/;
    const pool = r.body.pool_output.split(',');
    const first = r.body.first_token_output.split(',');
    const positions = r.body.all_hidden_outputs.split(';');
    expect(positions).toHaveLength(128);
    const hidden = first.length;
    expect(pool).toHaveLength(hidden);
    for (const p of positions) expect(p.split(',')).toHaveLength(hidden);
    expect([...pool, ...first].every((s: string) => number.test(s))).toBe(true);
    expect(positions[0]).toBe(r.body.first_token_output);
  });

  it('batches concurrent requests and refuses a sequence_length over 512', async () => {
    const page = async () => (await fetch(`${hub.workers[0].metricsUrl}/metrics`)).text();
    const labels = { model: 'bert-base-chinese', device: 'cpu' };
    const runsBefore = metricValue(await page(), 'modelhub_session_runs_total', labels);
    const sentences = Array.from({ length: 16 }, (_, i) => ({
      first_sequence: `双十一 ${i}`,
      sequence_length: 16 + i,
      output_schema: 'first_token_output',
    }));
    const ids = await whileWorkerHeld(hub.workers[0], () =>
      Promise.all(
        sentences.map(
          async (input) => (await postJson(`${hub.url}/v1/models/bert-base-chinese/jobs`, { input })).body.id as string,
        ),
      ),
    );
    const jobs = await Promise.all(ids.map((id) => pollJob(hub.url, id)));
    expect(jobs.every((j) => j.status === 'succeeded' && typeof j.output.first_token_output === 'string')).toBe(true);
    const runs = metricValue(await page(), 'modelhub_session_runs_total', labels) - runsBefore;
    expect(runs).toBeLessThan(16);
    const tooLong = await postJson(`${hub.url}/v1/models/bert-base-chinese/jobs`, {
      input: { first_sequence: 'x', sequence_length: 513 },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error_msg).toMatch(/512/);
  });
});
