/**
 * Bulk work is fair to interactive traffic: with a 10,000-item batch queued on a (slow) model, a
 * single interactive job waits behind at most about one chunk of bulk items per worker, not
 * behind the batch. Counted from the results' completion times, never timed.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, solidImage } from '../helpers/images.js';
import { slowModelsDir } from '../helpers/slow-model.js';
import { pollBatch, postJsonl, results } from '../helpers/batches.js';

const CHUNK = 32;
const MAX_BATCH = 4;

describe('a 10,000-item batch and one interactive job on the same model', () => {
  let hub: Hub;
  let modelsDir: string;
  beforeAll(async () => {
    modelsDir = slowModelsDir({ layers: 6, channels: 32, size: 160, maxBatchSize: MAX_BATCH });
    hub = await startHub({
      name: 'fair',
      models: 'slow',
      env: { MODELHUB_MODELS_DIR: modelsDir, BATCH_CHUNK_SIZE: String(CHUNK), BATCH_WORKER_CHUNKS: '2' },
    });
  });
  afterAll(async () => {
    await hub?.stop();
    if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  it('the job starts after at most about one chunk of bulk items per worker', async () => {
    const image = b64(await solidImage(32, 32, [120, 60, 200]));
    const lines = Array.from({ length: 10_000 }, () => JSON.stringify({ image }));
    const batch = await postJsonl(`${hub.url}/v1/models/slow/batches`, lines);
    expect(batch.status).toBe(202);
    expect(batch.body.counts.total).toBe(10_000);

    // Let the bulk run get going: the worker's batcher is busy with it.
    for (;;) {
      const view = (await (await fetch(`${hub.url}/v1/batches/${batch.body.id}`)).json()) as any;
      if (view.counts.succeeded >= 3 * CHUNK) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const submitted = await postJson(`${hub.url}/v1/models/slow/jobs`, { input: { image } });
    expect(submitted.status).toBe(202);
    const job = await pollJob(hub.url, submitted.body.id, 120_000);
    expect(job.status).toBe('succeeded');

    const canceled = await postJson(`${hub.url}/v1/batches/${batch.body.id}/cancel`, {});
    expect(canceled.body.status).toBe('canceled');
    const done = await pollBatch(hub.url, batch.body.id);
    const lines_ = await results(hub.url, batch.body.id);
    expect(lines_).toHaveLength(10_000);
    expect(done.counts.succeeded + done.counts.canceled).toBe(10_000);
    expect(done.counts.canceled).toBeGreaterThan(5_000);

    // Bulk items that finished while the job waited or ran: what it waited behind, plus its batch-mates.
    const from = Date.parse(job.created_at);
    const to = Date.parse(job.completed_at);
    const during = lines_.filter(
      (l) => l.status === 'succeeded' && Date.parse(l.completed_at) >= from && Date.parse(l.completed_at) <= to,
    );
    // The bulk run was active while the job was in (else this proves nothing) ...
    expect(during.length).toBeGreaterThan(0);
    // ... and the job did not wait behind whole chunks: at most about one chunk (one worker).
    expect(during.length).toBeLessThanOrEqual(CHUNK);
    console.log(
      `bulk items finished while the interactive job was in: ${during.length} (chunk ${CHUNK}, max_batch_size ${MAX_BATCH})`,
    );
  }, 300_000);
});
