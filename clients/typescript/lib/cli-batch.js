/**
 * `modelhub batch …`: many inputs as one batch. Inputs come from a JSONL file (one spec input per
 * line) or from image files (each one becomes `{ image, …-p options }`).
 */
import { readFile } from 'node:fs/promises';
import { table } from './format.js';
export const BATCH_USAGE = `  batch submit <model> <inputs.jsonl | image-file…> [-p k=v]… [--priority 1-10] [--timeout S]
          [--webhook URL] [--idempotency-key K] [--wait]
  batch   <id> [--wait]                   a batch's status and item counts
  batch results <id> [--order input]      its finished items (JSONL with --json)
  batch cancel <id>                       cancel the items not yet started`;
/** A usage mistake in `batch …` (exit 2, as the CLI's other usage errors). */
export class BatchUsageError extends Error {
}
/** --wait passed --wait-timeout before the batch finished (exit 4); the batch continues on the hub. */
export class BatchWaitTimeoutError extends Error {
    batch;
    name = 'BatchWaitTimeoutError';
    constructor(batch) {
        super(`batch ${batch.id} is still ${batch.status} after the wait limit; it continues on the hub`);
        this.batch = batch;
    }
}
const FINAL = new Set(['completed', 'canceled']);
async function inputsFrom(files, params) {
    if (files.length === 1 && /\.jsonl?$/i.test(files[0])) {
        const text = await readFile(files[0], 'utf8').catch((err) => {
            throw new BatchUsageError(`cannot read ${files[0]}: ${err.message}`);
        });
        return text
            .split('\n')
            .filter((l) => l.trim())
            .map((line, i) => {
            try {
                return { ...JSON.parse(line), ...params };
            }
            catch {
                throw new BatchUsageError(`${files[0]} line ${i + 1} is not JSON`);
            }
        });
    }
    return Promise.all(files.map(async (f) => ({
        image: (await readFile(f).catch((err) => {
            throw new BatchUsageError(`cannot read ${f}: ${err.message}`);
        })).toString('base64'),
        ...params,
    })));
}
export function batchTable(b) {
    const c = b.counts;
    const rows = [
        ['id', b.id],
        ['model', b.model],
        ['status', b.status],
        [
            'items',
            `${c.total}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.canceled} canceled, ${c.running} running, ${c.queued} queued`,
        ],
        ['created', b.created_at],
    ];
    if (b.started_at)
        rows.push(['started', b.started_at]);
    if (b.completed_at)
        rows.push(['completed', b.completed_at]);
    if (b.canceled_at)
        rows.push(['canceled', b.canceled_at]);
    const width = Math.max(...rows.map(([k]) => k.length));
    return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
/** Polls the batch with backoff (1 s doubling to 10 s) until it completes; a progress line on stderr. */
async function waitBatch(hub, batch, timeoutS) {
    const deadline = timeoutS === undefined ? Infinity : Date.now() + timeoutS * 1000;
    const started = Date.now();
    let pause = 1000;
    let last = '';
    const tty = Boolean(process.stderr.isTTY);
    for (;;) {
        const c = batch.counts;
        const line = `batch ${batch.id}: ${batch.status}, ${c.succeeded + c.failed + c.canceled}/${c.total} done`;
        if (tty)
            process.stderr.write(`\r\x1b[K${line} … ${((Date.now() - started) / 1000).toFixed(0)} s`);
        else if (line !== last)
            process.stderr.write(`${line}\n`);
        last = line;
        if (FINAL.has(batch.status))
            break;
        if (Date.now() >= deadline) {
            if (tty)
                process.stderr.write('\n');
            throw new BatchWaitTimeoutError(batch);
        }
        await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
        pause = Math.min(pause * 2, 10_000);
        batch = await hub.getBatch(batch.id);
    }
    if (tty)
        process.stderr.write('\r\x1b[K');
    return batch;
}
function print(json, value, human) {
    process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
}
/** Runs `batch …`; returns the exit status. */
export async function runBatch(hub, args, flags) {
    const [sub, ...rest] = args;
    if (sub === 'submit') {
        if (rest.length < 2)
            throw new BatchUsageError('batch submit expects <model> and a JSONL file or image files');
        const inputs = await inputsFrom(rest.slice(1), flags.params);
        const options = {};
        if (flags.priority !== undefined)
            options.priority = flags.priority;
        if (flags.timeoutS !== undefined)
            options.timeoutS = flags.timeoutS;
        if (flags.webhook !== undefined)
            options.webhook = flags.webhook;
        if (flags.idempotencyKey !== undefined)
            options.idempotencyKey = flags.idempotencyKey;
        let batch = await hub.submitBatch(rest[0], inputs, options);
        if (flags.wait)
            batch = await waitBatch(hub, batch, flags.waitTimeoutS);
        print(flags.json, batch, batchTable(batch));
        return 0;
    }
    if (sub === 'results') {
        if (rest.length !== 1)
            throw new BatchUsageError('batch results expects <id>');
        if (flags.order !== undefined && flags.order !== 'input' && flags.order !== 'completion')
            throw new BatchUsageError('--order is input or completion');
        const lines = await hub.batchResults(rest[0], { order: (flags.order ?? 'completion') });
        if (flags.json)
            process.stdout.write(lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : ''));
        else
            process.stdout.write(table(['INDEX', 'STATUS', 'RESULT'], lines.map((l) => [
                l.index,
                l.status,
                l.error
                    ? `error ${l.error.error_code}: ${l.error.error_msg}`
                    : Object.keys(l.output ?? {})
                        .filter((k) => !['request_id', 'success', 'error_code'].includes(k))
                        .join(', '),
            ])) + '\n');
        return 0;
    }
    if (sub === 'cancel') {
        if (rest.length !== 1)
            throw new BatchUsageError('batch cancel expects <id>');
        const batch = await hub.cancelBatch(rest[0]);
        print(flags.json, batch, batchTable(batch));
        return 0;
    }
    if (sub && rest.length === 0) {
        let batch = await hub.getBatch(sub);
        if (flags.wait)
            batch = await waitBatch(hub, batch, flags.waitTimeoutS);
        print(flags.json, batch, batchTable(batch));
        return 0;
    }
    throw new BatchUsageError('batch expects submit, results, cancel or a batch id');
}
