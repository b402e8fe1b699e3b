import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { loadModelRepository } from '../../shared/manifest.js';
import { sessionOptionsFor } from '../../worker/backend/device.js';
import { SessionPool } from '../../worker/backend/session-pool.js';

const repo = loadModelRepository(loadConfig({}));
const resnet = repo.get('resnet50')!;
const input = () => ({ data: new ort.Tensor('float32', new Float32Array(3 * 224 * 224).fill(0.2), [1, 3, 224, 224]) });

describe('SessionPool', () => {
  it('gives models of one file one session, kept until its last user releases it', async () => {
    const pool = new SessionPool();
    const options = sessionOptionsFor({ kind: 'cpu' });
    const [a, b] = await Promise.all([
      pool.acquire(resnet.modelPath!, options),
      pool.acquire(resnet.modelPath!, options),
    ]);
    expect(pool.size).toBe(1);
    expect(a.threadIds).toEqual(b.threadIds);
    const expected = Array.from((await a.run(input())).resnetv24_dense0_fwd.data as Float32Array);
    await a.release();
    await a.release(); // twice is once
    expect(pool.size).toBe(1);
    expect(Array.from((await b.run(input())).resnetv24_dense0_fwd.data as Float32Array)).toEqual(expected);
    await b.release();
    expect(pool.size).toBe(0);
  });

  it('opens a session per distinct file', async () => {
    const pool = new SessionPool();
    const options = sessionOptionsFor({ kind: 'cpu' });
    const other = repo.get('deeplabv3')!;
    const handles = await Promise.all([
      pool.acquire(resnet.modelPath!, options),
      pool.acquire(other.modelPath!, options),
    ]);
    expect(pool.size).toBe(2);
    for (const h of handles) await h.release();
    expect(pool.size).toBe(0);
  });

  it('a file that fails to load is not kept: the next acquire tries again', async () => {
    const pool = new SessionPool();
    await expect(pool.acquire('/nonexistent/model.onnx', sessionOptionsFor({ kind: 'cpu' }))).rejects.toThrow();
    expect(pool.size).toBe(0);
  });
});
