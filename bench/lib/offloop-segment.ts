/**
 * bench/offloop.ts's `segment` step: a 3000×3000 deeplabv3 answer's postprocessing (logits
 * [21, 520, 520] resampled to every image pixel, softmax, argmax, PNG-encoded maps), once on the
 * event loop (OFFLOOP_POSTPROCESS_PIXELS=0, the old way) and once at the default threshold (in
 * a thread). Preprocessing and inference are not part of it: the logits are made up.
 */
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../../shared/config.js';
import { taskOptions } from '../../shared/options/worker.js';
import { loadModel } from '../../shared/manifest.js';
import { TASK_PIPELINES } from '../../worker/tasks/index.js';
import { closePostprocessPool } from '../../worker/tasks/postprocess/offloop.js';
import type { Step } from '../offloop.js';

export async function benchSegment(): Promise<Step> {
  const side = 3000;
  const map = 520;
  const base = { ...process.env, MODELHUB_TEST_MODELS: 'always' };
  const image = (
    await sharp({ create: { width: side, height: side, channels: 3, background: '#808080' } })
      .png()
      .toBuffer()
  ).toString('base64');
  const logits = Float32Array.from({ length: 21 * map * map }, (_, i) => Math.sin(i * 0.37) * 4);
  console.log(`segment: ${side}×${side} deeplabv3, logits [21, ${map}, ${map}], encoding png`);
  const step = async (threshold: string) => {
    const config = loadConfig({ ...base, OFFLOOP_POSTPROCESS_PIXELS: threshold });
    const entry = loadModel('models/deeplabv3', config);
    const pipeline = TASK_PIPELINES['semantic-segmentation']!({
      entry,
      session: { inputNames: ['input'], outputNames: ['out'] },
      options: taskOptions(config),
    });
    const item = await pipeline.preprocess({ image, encoding: 'png', per_class_probs: false });
    return async () => {
      await pipeline.postprocess({ out: new ort.Tensor('float32', logits, [1, 21, map, map]) }, 0, item);
    };
  };
  return {
    name: 'segment',
    inline: await step('0'),
    offloop: await step(String(loadConfig({}).OFFLOOP_POSTPROCESS_PIXELS)),
    close: closePostprocessPool,
  };
}
