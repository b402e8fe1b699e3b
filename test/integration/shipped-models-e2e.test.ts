/**
 * The shipped MobileNetV2 out of the box (no MODELHUB_WEIGHTS_DIR, no download) through the hub:
 * the same answer on chelsea (CC0) from the predict API, a queued job, the TypeScript SDK and the
 * batch path; each job's metrics and the catalog name the weights' sha256 and `verified`; the
 * catalog lists real models before test stand-ins, each stand-in with the command that makes it real.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelHub } from '../../clients/typescript/src/index.js';
import { REPO_ROOT } from '../../shared/config.js';
import { getJson, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { pollBatch, results } from '../helpers/batches.js';

const SHA256 = '83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f';
const chelsea = fs.readFileSync(path.join(REPO_ROOT, 'models/mobilenetv2/example.jpg')).toString('base64');

let hub: Hub;
beforeAll(async () => {
  hub = await startHub({ name: 'shipped', models: 'mobilenetv2', env: { MODELHUB_WEIGHTS_DIR: '' } });
});
afterAll(async () => {
  await hub?.stop();
});

describe('shipped mobilenetv2 end to end', () => {
  it('answers identically through the API, a job, the SDK and a batch; the job names its weights', async () => {
    const api = await postJson(`${hub.url}/v1/models/mobilenetv2/predict`, { image: chelsea });
    expect(api.status).toBe(200);
    expect(api.body.class_name).toBe('Egyptian cat');
    // A predict answer's metrics say how it was delivered (entry_items), not what the model said.
    const { request_id: _r1, metrics: predictMetrics, ...answer } = api.body;
    expect(predictMetrics).toEqual({ entry_items: 1 });

    const submitted = await postJson(`${hub.url}/v1/models/mobilenetv2/jobs`, { input: { image: chelsea } });
    const job = await pollJob(hub.url, submitted.body.id);
    const { request_id: _r2, ...jobAnswer } = job.output;
    expect(jobAnswer).toEqual(answer);
    expect(job.metrics).toMatchObject({ weights_sha256: SHA256, weights: 'verified' });

    const sdk = new ModelHub({ url: hub.url });
    const {
      request_id: _r3,
      metrics: _m3,
      ...sdkAnswer
    } = (await sdk.predict('mobilenetv2', {
      image: chelsea,
    })) as unknown as Record<string, unknown>;
    expect(sdkAnswer).toEqual(answer);

    const batch = await sdk.submitBatch('mobilenetv2', [{ image: chelsea }]);
    await pollBatch(hub.url, batch.id, {});
    const [line] = await results(hub.url, batch.id, 'input', {});
    expect(line.status).toBe('succeeded');
    const { request_id: _r4, ...batchAnswer } = line.output;
    expect(batchAnswer).toEqual(answer);
  });

  it('the catalog names the sha256 and verified, real models first, each stand-in with its make_real command', async () => {
    const { body } = await getJson(`${hub.url}/v1/models`);
    const models = body.models as Array<Record<string, any>>;
    const mobilenet = models.find((m) => m.name === 'mobilenetv2')!;
    expect(mobilenet).toMatchObject({
      weights: 'real',
      weights_file: 'mobilenetv2-12-int8-resaved.onnx',
      weights_sha256: SHA256,
      verification: 'verified',
      license: 'Apache-2.0 (ONNX Model Zoo)',
    });
    expect(mobilenet.make_real).toBeUndefined();
    const kinds = models.map((m) => m.weights);
    const firstTest = kinds.indexOf('test');
    expect(firstTest).toBeGreaterThan(0);
    expect(kinds.slice(0, firstTest).every((k) => k === 'real')).toBe(true);
    expect(kinds.slice(firstTest).every((k) => k !== 'real')).toBe(true);
    for (const name of ['mobilenetv2', 'yolox-nano', 'deeplabv3-mobilenetv2'])
      expect(models.slice(0, firstTest).map((m) => m.name)).toContain(name);
    expect(models.find((m) => m.name === 'resnet50')).toMatchObject({
      weights: 'test',
      verification: 'test',
      make_real: 'npm run models:fetch -- resnet50',
    });
  });
});
