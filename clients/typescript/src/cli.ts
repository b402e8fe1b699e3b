#!/usr/bin/env node
/**
 * The `modelhub` command line, built on the SDK. Tables for people by default, `--json` for
 * scripts (for `predict`, the spec output itself). Exit codes: 0 done, 1 spec error or failed
 * job, 2 usage, 3 hub unreachable, 4 wait limit passed.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BATCH_USAGE, BatchUsageError, BatchWaitTimeoutError, runBatch } from './cli-batch.js';
import { ModelHub, outputOf } from './client.js';
import { ModelHubConnectionError, ModelHubError, WaitTimeoutError } from './errors.js';
import { jobTable, modelsTable, outputSummary, usageTable } from './format.js';
import type { Job, SubmitOptions } from './types.js';

const USAGE = `Usage: modelhub [--url URL] [--key KEY] [--json] <command> …

Commands:
  models                                  models with task, status, live workers, queue depth
  predict <model> <image-file> [-p k=v]…  run one input and print its output
  predict <model> --text "…" [--pair "…"] [--sequence-length N] [--output-schema a,b]
  submit  <model> <image-file> | --text "…" [--pair "…"]
          [--webhook URL] [--events start,completed] [--priority 1-10] [--timeout S]
          [--idempotency-key K] [--wait]
  job     <id> [--wait]                   a job's status (and output once finished)
  cancel  <id>                            cancel a queued job
  usage   [--tenant T]                    your waiting jobs and stored bytes per model, against your
                                          limits (what a 429 with error_code 1402 is decided on);
                                          --tenant needs an admin key
${BATCH_USAGE}

Options:
  --url URL           the hub (default $MODELHUB_URL, else http://127.0.0.1:8080)
  --key KEY           API key (default $MODELHUB_API_KEY)
  --json              machine-readable output (predict: the spec output itself)
  -p, --param k=v     a request option, e.g. -p score_threshold=0.5 -p mask_encoding=rle
  --order input       batch results by input index (default: completion order)
  --wait-timeout S    give up waiting after S seconds (the job or batch continues)
  -h, --help          this text

Exit status: 0 done, 1 spec error or failed job, 2 usage, 3 hub unreachable, 4 wait limit passed.`;

class UsageError extends Error {}

const options = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  text: { type: 'string' },
  pair: { type: 'string' },
  'sequence-length': { type: 'string' },
  'output-schema': { type: 'string' },
  param: { type: 'string', short: 'p', multiple: true },
  webhook: { type: 'string' },
  events: { type: 'string' },
  priority: { type: 'string' },
  timeout: { type: 'string' },
  'idempotency-key': { type: 'string' },
  wait: { type: 'boolean', default: false },
  'wait-timeout': { type: 'string' },
  order: { type: 'string' },
  tenant: { type: 'string' },
} satisfies ParseArgsConfig['options'];

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function numberFlag(
  flags: Flags,
  name: 'priority' | 'timeout' | 'sequence-length' | 'wait-timeout',
): number | undefined {
  const raw = flags[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${raw}"`);
  return n;
}

/** -p k=v → { k: v }, v read as JSON when it parses (numbers, booleans), else as a string. */
function params(flags: Flags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of flags.param ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`-p expects key=value, not "${p}"`);
    const raw = p.slice(i + 1);
    try {
      out[p.slice(0, i)] = JSON.parse(raw);
    } catch {
      out[p.slice(0, i)] = raw;
    }
  }
  return out;
}

/** The spec input from an image file or --text/--pair, plus -p options. */
async function inputOf(flags: Flags, file: string | undefined): Promise<Record<string, unknown>> {
  if (flags.text !== undefined) {
    if (file) throw new UsageError('give an image file or --text, not both');
    const input: Record<string, unknown> = { first_sequence: flags.text };
    if (flags.pair !== undefined) input.second_sequence = flags.pair;
    const length = numberFlag(flags, 'sequence-length');
    if (length !== undefined) input.sequence_length = length;
    if (flags['output-schema'] !== undefined) input.output_schema = flags['output-schema'];
    return { ...input, ...params(flags) };
  }
  if (!file) throw new UsageError('give an image file (or --text "…" for a text model)');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return { image: bytes.toString('base64'), ...params(flags) };
}

/** One status line on stderr while waiting: rewritten in place on a terminal, one line per change otherwise. */
class Progress {
  private status = '';
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(private readonly id: string) {
    if (this.tty) this.timer = setInterval(() => this.draw(), 200);
  }

  update(job: Job<unknown>): void {
    if (job.status === this.status) return;
    this.status = job.status;
    if (this.tty) this.draw();
    else process.stderr.write(`job ${this.id}: ${job.status} (${this.elapsed()})\n`);
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write('\r\x1b[K');
  }

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)} s`;
  }

  private draw(): void {
    process.stderr.write(`\r\x1b[Kjob ${this.id}: ${this.status || 'submitted'} … ${this.elapsed()}`);
  }
}

async function waitWithProgress(hub: ModelHub, job: Job<unknown>, flags: Flags): Promise<Job<unknown>> {
  const progress = new Progress(job.id);
  progress.update(job);
  try {
    const timeoutS = numberFlag(flags, 'wait-timeout');
    return await hub.wait(job, {
      holdS: 5,
      onUpdate: (j) => progress.update(j),
      ...(timeoutS === undefined ? {} : { timeoutS }),
    });
  } finally {
    progress.done();
  }
}

function print(flags: Flags, json: unknown, human: string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

async function run(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const [command, ...args] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || flags.help ? 0 : 2;
  }
  const url = flags.url ?? process.env.MODELHUB_URL ?? 'http://127.0.0.1:8080';
  const apiKey = flags.key ?? process.env.MODELHUB_API_KEY;
  const hub = new ModelHub({ url, ...(apiKey ? { apiKey } : {}) });
  const arity = (n: number, what: string) => {
    if (args.length !== n) throw new UsageError(`${command} expects ${what}`);
  };

  switch (command) {
    case 'models': {
      arity(0, 'no arguments');
      const models = await hub.models();
      print(flags, { models }, modelsTable(models));
      return 0;
    }
    case 'predict': {
      if (args.length < 1 || args.length > 2)
        throw new UsageError('predict expects <model> <image-file> or <model> --text "…"');
      const input = await inputOf(flags, args[1]);
      const job = await hub.submit(args[0], input as never);
      const done = await waitWithProgress(hub, job, flags);
      const output = outputOf(done) as Record<string, unknown>;
      print(flags, output, outputSummary(output));
      return 0;
    }
    case 'submit': {
      if (args.length < 1 || args.length > 2)
        throw new UsageError('submit expects <model> <image-file> or <model> --text "…"');
      const input = await inputOf(flags, args[1]);
      const submit: SubmitOptions = {};
      const priority = numberFlag(flags, 'priority');
      const timeoutS = numberFlag(flags, 'timeout');
      if (priority !== undefined) submit.priority = priority;
      if (timeoutS !== undefined) submit.timeoutS = timeoutS;
      if (flags.webhook !== undefined) submit.webhook = flags.webhook;
      if (flags.events !== undefined)
        submit.webhookEvents = flags.events.split(',').map((e) => e.trim()) as ('start' | 'completed')[];
      if (flags['idempotency-key'] !== undefined) submit.idempotencyKey = flags['idempotency-key'];
      let job: Job<unknown> = await hub.submit(args[0], input as never, submit);
      if (flags.wait) job = await waitWithProgress(hub, job, flags);
      return report(flags, job);
    }
    case 'job': {
      arity(1, '<id>');
      let job: Job<unknown> = await hub.get(args[0]);
      if (flags.wait) job = await waitWithProgress(hub, job, flags);
      return report(flags, job);
    }
    case 'cancel': {
      arity(1, '<id>');
      return report(flags, await hub.cancel(args[0]));
    }
    case 'usage': {
      arity(0, 'no arguments');
      const usage = await hub.usage(flags.tenant === undefined ? {} : { tenant: flags.tenant });
      print(flags, usage, usageTable(usage));
      return 0;
    }
    case 'batch': {
      const waitTimeoutS = numberFlag(flags, 'wait-timeout');
      const priority = numberFlag(flags, 'priority');
      const timeoutS = numberFlag(flags, 'timeout');
      return runBatch(hub, args, {
        json: flags.json,
        wait: flags.wait,
        params: params(flags),
        ...(priority === undefined ? {} : { priority }),
        ...(timeoutS === undefined ? {} : { timeoutS }),
        ...(flags.webhook === undefined ? {} : { webhook: flags.webhook }),
        ...(flags['idempotency-key'] === undefined ? {} : { idempotencyKey: flags['idempotency-key'] }),
        ...(flags.order === undefined ? {} : { order: flags.order }),
        ...(waitTimeoutS === undefined ? {} : { waitTimeoutS }),
      });
    }
    default:
      throw new UsageError(`unknown command "${command}" (models, predict, submit, job, cancel, usage, batch)`);
  }
}

/** Prints a job; a failed or canceled one exits 1, as its spec error. */
function report(flags: Flags, job: Job<unknown>): number {
  const out = job.output as Record<string, unknown> | undefined;
  const summary = job.status === 'succeeded' && out ? `\n\n${outputSummary(out)}` : '';
  print(flags, job, jobTable(job) + summary);
  if (job.status === 'failed') {
    const e = out as { error_code?: number; error_msg?: string } | undefined;
    process.stderr.write(
      `modelhub: job failed: ${e?.error_msg ?? 'no reason given'} (error_code ${e?.error_code ?? '?'})\n`,
    );
    return 1;
  }
  return 0;
}

async function main(): Promise<void> {
  let code: number;
  try {
    code = await run(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ModelHubError) {
      if (process.argv.includes('--json'))
        process.stdout.write(
          `${JSON.stringify({ success: false, error_code: err.error_code, error_msg: err.error_msg, ...(err.request_id ? { request_id: err.request_id } : {}) }, null, 2)}\n`,
        );
      process.stderr.write(
        `modelhub: error ${err.error_code} (HTTP ${err.status}): ${err.error_msg}${err.request_id ? ` [job ${err.request_id}]` : ''}\n`,
      );
      code = 1;
    } else if (
      err instanceof UsageError ||
      err instanceof BatchUsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`modelhub: ${(err as Error).message}\nRun "modelhub --help" for usage.\n`);
      code = 2;
    } else if (err instanceof ModelHubConnectionError) {
      process.stderr.write(`modelhub: ${err.message}\n`);
      code = 3;
    } else if (err instanceof WaitTimeoutError || err instanceof BatchWaitTimeoutError) {
      process.stderr.write(`modelhub: ${err.message}\n`);
      code = 4;
    } else {
      throw err;
    }
  }
  process.exitCode = code;
}

await main();
