/**
 * The bare baseline's ingress: the least a BullMQ-based hub can do per request. One Express
 * route adds a job and answers when QueueEvents reports it finished. No validation, no job
 * index, no retention bookkeeping beyond BullMQ's own. `npm run bench` starts it.
 */
import express from 'express';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = process.env.BARE_PREFIX ?? 'bare';
const port = Number(process.env.PORT ?? 0);

const connection = new Redis(url, { maxRetriesPerRequest: null });
const queue = new Queue('bare', {
  connection,
  prefix,
  defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
});
const events = new QueueEvents('bare', { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix });
await events.waitUntilReady();

const app = express();
app.use(express.json({ limit: '32mb' }));
app.post('/predict', async (req, res) => {
  const job = await queue.add('echo', req.body);
  res.json(await job.waitUntilFinished(events, 60_000));
});
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
