/** The bare baseline's worker: returns at once (a few bytes), so only the framework costs. */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = process.env.BARE_PREFIX ?? 'bare';
const worker = new Worker('bare', async () => ({ ok: true }), {
  connection: new Redis(url, { maxRetriesPerRequest: null }),
  prefix,
  concurrency: Number(process.env.BARE_CONCURRENCY ?? 64),
});
await worker.waitUntilReady();
process.send?.('ready');
console.log('bare worker ready');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
