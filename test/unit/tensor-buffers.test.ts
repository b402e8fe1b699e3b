/**
 * Recycled tensor buffers (worker/backend/tensor-buffers.ts): a buffer handed back is handed out
 * again for the same size, and a recycled buffer's old contents never reach an answer: tensors
 * with padding, mixed-size batches and whole pages come out the same as in fresh buffers. The
 * session thread hands a run's input buffers back; a page's tensor after its batch ran serves the
 * next page.
 */
import * as ort from 'onnxruntime-node';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { ImagePreprocessSchema, loadModel, loadModelRepository } from '../../shared/manifest.js';
import { sessionOptionsFor } from '../../worker/backend/device.js';
import { TensorBuffers, tensorBuffers } from '../../worker/backend/tensor-buffers.js';
import { ThreadedSession } from '../../worker/backend/threaded-session.js';
import { createWorkerMetrics } from '../../worker/metrics.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { loadImageTensor } from '../../worker/tasks/image-preprocess.js';
import { collateImages, type VisionItem } from '../../worker/tasks/vision-input.js';
import { b64 } from '../helpers/images.js';

const MiB = 1024 * 1024;
const limits = { maxImageBytes: 50_000_000, maxImagePixels: 50_000_000 };

/** Fills the shared buffers with garbage buffers of `floats` floats (NaN: any leak shows). */
function poison(floats: number, count = 2): void {
  for (let i = 0; i < count; i++) tensorBuffers.recycle(new Float32Array(floats).fill(Number.NaN).buffer);
}

async function gradient(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + Math.floor(i / (width * 3)) * 11) & 255;
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

beforeEach(() => tensorBuffers.clear());

describe('TensorBuffers', () => {
  it('hands a recycled buffer out again for the same size only, newest first', () => {
    const pool = new TensorBuffers({ minBytes: MiB, maxBytes: 16 * MiB });
    const a = new Float32Array(MiB / 4);
    const b = new Float32Array(MiB / 4);
    pool.recycle(a.buffer);
    pool.recycle(b.buffer);
    pool.recycle(b.buffer); // already held: once only
    expect(pool.heldBytes).toBe(2 * MiB);
    expect(pool.float32(MiB / 4 + 1).buffer).not.toBe(a.buffer); // another size: new
    expect(pool.float32(MiB / 4).buffer).toBe(b.buffer);
    expect(pool.float32(MiB / 4).buffer).toBe(a.buffer);
    const fresh = pool.float32(MiB / 4);
    expect(fresh.buffer).not.toBe(a.buffer);
    expect(fresh.every((v) => v === 0)).toBe(true);
    expect(pool.reused).toBe(2);
    expect(pool.heldBytes).toBe(0);
  });

  it('ignores small, shared and detached buffers and views into larger ones; keeps at most maxBytes, dropping the oldest', () => {
    const pool = new TensorBuffers({ minBytes: MiB, maxBytes: 3 * MiB });
    pool.recycle(new ArrayBuffer(MiB - 4));
    pool.recycle(new SharedArrayBuffer(2 * MiB));
    const moved = new ArrayBuffer(2 * MiB);
    structuredClone(moved, { transfer: [moved] });
    pool.recycle(moved);
    pool.recycleView(new Float32Array(new ArrayBuffer(4 * MiB), 0, MiB / 4));
    expect(pool.heldBytes).toBe(0);
    const [x, y, z] = [MiB, MiB, 2 * MiB].map((n) => new ArrayBuffer(n));
    pool.recycle(x);
    pool.recycle(y);
    pool.recycle(z); // 4 MiB > 3: x goes
    expect(pool.heldBytes).toBe(3 * MiB);
    expect(pool.float32(MiB / 4).buffer).toBe(y);
    expect(pool.float32(MiB / 4).buffer).not.toBe(x);
  });
});

describe('recycled buffers never reach an answer', () => {
  const letterbox = ImagePreprocessSchema.parse({
    resize: { mode: 'letterbox', width: 640, height: 640, pad_value: 114 },
    channel_order: 'RGB',
    scale: 1 / 255,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  });
  // R-CNN style: padded to a multiple of 32 with zeros after normalising.
  const minMax = ImagePreprocessSchema.parse({
    resize: { mode: 'min-max', min_size: 600, max_size: 1000, multiple_of: 32 },
    channel_order: 'RGB',
    scale: 1,
    mean: [102.9801, 115.9465, 122.7717],
    std: [1, 1, 1],
  });
  const page = ImagePreprocessSchema.parse({
    resize: { mode: 'limit-side', max_side: 960, multiple_of: 32 },
    channel_order: 'BGR',
    scale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  });

  it('padded tensors (letterbox, zero padding) and a page-sized one are the same in a recycled buffer as in a fresh one', async () => {
    for (const [pre, image] of [
      [letterbox, await gradient(1200, 700)],
      [minMax, await gradient(1200, 700)],
      [page, await gradient(1280, 960)],
    ] as const) {
      const fresh = await loadImageTensor(b64(image), limits, pre);
      poison(fresh.data.length);
      const before = tensorBuffers.reused;
      const again = await loadImageTensor(b64(image), limits, pre);
      expect(tensorBuffers.reused).toBe(before + 1); // it did get a poisoned buffer
      expect(again.dims).toEqual(fresh.dims);
      expect(Buffer.from(again.data.buffer).equals(Buffer.from(fresh.data.buffer))).toBe(true);
    }
  });

  it('a batch mixing sizes is padded the same in a recycled buffer; a uniform batch of one runs in its own tensor', () => {
    const item = (w: number, h: number, value: number): VisionItem<object> => {
      const own = {
        imageWidth: w,
        imageHeight: h,
        tensorWidth: w,
        tensorHeight: h,
        scaleX: 1,
        scaleY: 1,
        padLeft: 0,
        padTop: 0,
        cropLeft: 0,
        cropTop: 0,
        contentWidth: w,
        contentHeight: h,
      };
      return {
        feeds: { x: { type: 'float32', data: new Float32Array(3 * w * h).fill(value), dims: [3, h, w] } },
        batchKey: '3x640x640',
        geometry: own,
        options: {},
        bucket: { width: 640, height: 640, fill: [0.5, 0.25, 0], own },
      };
    };
    const mixed = () => [item(640, 600, 1), item(600, 640, 2)];
    const fresh = collateImages(mixed(), 'x').x.data as Float32Array;
    poison(fresh.length);
    const recycled = collateImages(mixed(), 'x').x.data as Float32Array;
    expect(Buffer.from(recycled.buffer).equals(Buffer.from(fresh.buffer))).toBe(true);
    // Spot checks: item 0's padding rows (below 600) hold its channels' fill; item 1's right columns too.
    const plane = 640 * 640;
    expect([fresh[639 * 640], fresh[plane + 639 * 640], fresh[2 * plane + 639 * 640]]).toEqual([0.5, 0.25, 0]);
    expect(fresh[2 * plane + 639]).toBe(1); // item 0's rows span the width
    expect(fresh[5 * plane + 639]).toBe(0); // item 1's third channel pads with 0
    expect(fresh[3 * plane + 639]).toBe(0.5);
    expect(fresh[3 * plane + 599]).toBe(2);

    const alone = item(640, 600, 3);
    const feeds = collateImages([alone], 'x');
    expect(feeds.x.data).toBe(alone.feeds.x.data);
    expect(feeds.x.dims).toEqual([1, 3, 600, 640]);
  });
});

describe('buffers come back', () => {
  const config = loadConfig({});
  const runners: ModelRunner[] = [];
  afterAll(async () => {
    for (const r of runners) await r.close();
  });

  it("the session thread hands a run's input buffers back", async () => {
    const entry = loadModelRepository(config).get('resnet50')!;
    const threaded = await ThreadedSession.create(entry.modelPath!, sessionOptionsFor({ kind: 'cpu' }));
    const data = new Float32Array(2 * 3 * 224 * 224).fill(0.1); // 1.2 MB
    await threaded.run({ data: new ort.Tensor('float32', data, [2, 3, 224, 224]) }, { transfer: true });
    expect(data.buffer.byteLength).toBe(0); // moved there
    expect(tensorBuffers.heldBytes).toBe(2 * 3 * 224 * 224 * 4); // and back
    await threaded.release();
  });

  it("a page's tensor serves the next page once its batch ran; the answers are the same", async () => {
    const entry = loadModel('models/text-detection', config);
    const runner = await ModelRunner.load(
      entry,
      { kind: 'cpu' },
      taskOptions(config),
      createWorkerMetrics(new Registry()),
    );
    runners.push(runner);
    const image = b64(await gradient(1280, 960));
    const first = await runner.run({ image });
    const before = tensorBuffers.reused;
    const second = await runner.run({ image });
    expect(tensorBuffers.reused).toBeGreaterThan(before);
    expect(second.output).toEqual(first.output);
  });
});
