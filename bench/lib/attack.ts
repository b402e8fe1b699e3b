/**
 * The bench's `attack` phase (issue #11): tenant B's predict latency on the bench model at low
 * concurrency, idle and then while tenant A runs the hostile mix against the same hub (API and
 * one worker serving B's model and deeplabv3): SVG bombs, 3000×3000 deeplabv3 requests (the
 * default `array` encoding, refused at the door, and `rle`, which run), 25 MB bodies and a flood
 * of large text jobs. Reports B's p50/p95 under attack / idle and A's answers by status and
 * error code. Quotas as a small deployment would set them: TENANT_MAX_WAITING=5.
 */
import path from 'node:path';
import { REPO_ROOT } from '../../shared/config.js';
import { SVG_BOMB, LARGE_TEXT, bigBody, hugeFlatImage } from './hostile-mix.js';
import { HttpClient, runLoad, type LoadResult } from './load.js';
import { freePort, httpReady, hubNode, startService } from './procs.js';

const A = 'bench-attacker-key-0123456789';
const B = 'bench-neighbour-key-012345678';

export interface AttackOptions {
  /** B's model and its predict bodies. */
  model: string;
  bodies: string[];
  /** The bench's environment (Redis, prefix); models are read from the repository's models/. */
  baseEnv: Record<string, string | undefined>;
  seconds: number;
  warmup: number;
  /** B's clients. Default 2. */
  concurrency?: number;
  /** A's requests in flight at once. Default 4. */
  attackers?: number;
  log: (s?: string) => void;
  /** Run the API and worker from TypeScript through tsx instead of dist/ (the bench's --source). */
  source?: boolean;
}

export interface AttackResult {
  concurrency: number;
  idle: LoadResult;
  underAttack: LoadResult;
  /** B's p50 and p95 under attack / idle. */
  p50Ratio: number;
  p95Ratio: number;
  /** A's answers, "<HTTP status> <error_code>" ("202" for accepted) → count. */
  attackerAnswers: Record<string, number>;
  attackerRequests: number;
}

export async function attackPhase(o: AttackOptions): Promise<AttackResult> {
  const concurrency = o.concurrency ?? 2;
  const env = {
    ...o.baseEnv,
    MODELHUB_MODELS_DIR: path.join(REPO_ROOT, 'models'),
    MODELHUB_API_KEYS: `${A}:attacker,${B}:neighbour`,
    MODELHUB_PREFIX: `${o.baseEnv.MODELHUB_PREFIX ?? 'bench'}-attack`,
    TENANT_MAX_WAITING: '5',
    // B's own rate limit kept out of its latency: at the default 50 requests/s, B's c=2 closed loop
    // on a fast host spent most of its requests on instant 429s (18,808 of 19,108 in one idle
    // window), and its p50/p95 were those of the calls the limiter let through.
    MODELHUB_TENANT_LIMITS: JSON.stringify({ neighbour: { rate_rps: 100_000 } }),
  };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = hubNode('api/main.ts', [], o.source);
  const apiService = await startService(
    'attack-api',
    api.command,
    api.args,
    { ...env, PORT: String(port), API_METRICS_PORT: String(await freePort()) },
    httpReady(`${url}/healthz`),
  );
  const metricsPort = await freePort();
  const worker = hubNode('worker/main.ts', [], o.source);
  const workerService = await startService(
    'attack-worker',
    worker.command,
    [...worker.args, '--device', 'cpu', '--models', `${o.model},deeplabv3`],
    { ...env, METRICS_PORT: String(metricsPort) },
    httpReady(`http://127.0.0.1:${metricsPort}/healthz`),
  );
  try {
    const target = {
      mode: 'predict' as const,
      path: `/v1/models/${o.model}/predict`,
      body: o.bodies,
      headers: { authorization: `Bearer ${B}` },
    };
    await runLoad(url, target, concurrency, 1, 0); // warm: JIT, first batches, connections
    const idle = await runLoad(url, target, concurrency, o.seconds, o.warmup);

    const huge = await hugeFlatImage();
    const big = bigBody();
    const mix: [string, string][] = [
      [`/v1/models/${o.model}/jobs`, JSON.stringify({ input: { image: SVG_BOMB.toString('base64') } })],
      ['/v1/models/deeplabv3/jobs', JSON.stringify({ input: { image: huge } })],
      ['/v1/models/deeplabv3/jobs', JSON.stringify({ input: { image: huge, encoding: 'rle' } })],
      [`/v1/models/${o.model}/jobs`, big],
      [
        '/v1/models/bert-base-chinese/jobs',
        JSON.stringify({ input: { first_sequence: LARGE_TEXT, second_sequence: LARGE_TEXT } }),
      ],
    ];
    const answers: Record<string, number> = {};
    let sent = 0;
    let attacking = true;
    const client = new HttpClient(url, o.attackers ?? 4);
    const attacker = async (offset: number) => {
      for (let i = offset; attacking; i++) {
        const [p, body] = mix[i % mix.length];
        sent++;
        let key: string;
        try {
          const r = await client.request('POST', p, body, { authorization: `Bearer ${A}` });
          key =
            r.status === 202
              ? '202'
              : `${r.status} ${(JSON.parse(r.body) as { error_code?: number }).error_code ?? '?'}`;
        } catch {
          key = 'connection error';
        }
        answers[key] = (answers[key] ?? 0) + 1;
      }
    };
    const attackers = Array.from({ length: o.attackers ?? 4 }, (_, i) => attacker(i));
    const underAttack = await runLoad(url, target, concurrency, o.seconds, o.warmup);
    attacking = false;
    await Promise.all(attackers);
    client.close();

    const result: AttackResult = {
      concurrency,
      idle,
      underAttack,
      p50Ratio: underAttack.p50 / idle.p50,
      p95Ratio: underAttack.p95 / idle.p95,
      attackerAnswers: Object.fromEntries(Object.entries(answers).sort()),
      attackerRequests: sent,
    };
    const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '–');
    o.log(
      `attack: tenant B predict ${o.model}, c=${concurrency}: idle p50 ${f(idle.p50)} p95 ${f(idle.p95)} ms${idle.failed ? `, FAILED ${idle.failed}` : ''}; under attack p50 ${f(underAttack.p50)} p95 ${f(underAttack.p95)} ms${underAttack.failed ? `, FAILED ${underAttack.failed}` : ''}`,
    );
    o.log(`  under attack / idle: p50 ${f(result.p50Ratio)}×, p95 ${f(result.p95Ratio)}×`);
    o.log(
      `  tenant A: ${sent} requests, answers ${Object.entries(result.attackerAnswers)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}`,
    );
    return result;
  } finally {
    await workerService.stop();
    await apiService.stop();
  }
}
