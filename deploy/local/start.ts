/**
 * `npm start`: the whole hub on one machine — Redis (a private one is started when REDIS_URL is
 * the default and nothing answers on 127.0.0.1:6379), the API, and a supervised worker serving
 * every available model. Ctrl-C stops everything. In production run `npm run start:api` and
 * `npm run start:worker` (or the fleet launcher) as separate processes instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { DEFAULT_REDIS_URL, REPO_ROOT, loadConfig, warnDeprecatedSettings, type Config } from '../../shared/config.js';
import { nodeEntryArgs } from '../../shared/entry-point.js';
import { createLogger, logOptions, type Logger } from '../../shared/logger.js';
import { redisAnswers, redisServerInstalled, startLocalRedis } from './redis.js';

const config = loadConfig();
const log = createLogger('start', logOptions(config));
warnDeprecatedSettings(log);
const children: ChildProcess[] = [];
let localRedis: ChildProcess | null = null;
let stopping = false;

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => c.once('exit', () => r()));

/** The API and the worker drain first (the worker stores its last batch in Redis), then Redis goes. */
function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code), 45_000).unref();
  const services = children.filter((c) => c !== localRedis);
  for (const c of services) c.kill('SIGTERM');
  void Promise.all(services.map(exited))
    .then(async () => {
      if (localRedis) {
        localRedis.kill('SIGTERM');
        await exited(localRedis);
      }
    })
    .then(() => process.exit(code));
}

/** `entry` relative to the code root (dist/ when compiled, the repository when run from source). */
function run(name: string, entry: string, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeEntryArgs(import.meta.url, `../../${entry}`), ...args], {
    stdio: 'inherit',
    env: process.env,
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      log.error({ process: name, code, signal }, `${name} exited; stopping the hub`);
      stopAll(1);
    }
  });
  children.push(child);
  return child;
}

/**
 * Test models stand in for reference models whose weights are not installed. Their generator is
 * a dev tool (it builds ONNX graphs with the dev dependency onnx-proto), so it is not compiled
 * into dist/: it runs from its TypeScript source under tsx, in a child process. After
 * `npm ci --omit=dev` there is no tsx: it is skipped, and those models are listed as unavailable.
 */
function generateTestModels(config: Config, log: Logger): void {
  if (config.MODELHUB_TEST_MODELS === 'off') return;
  let tsxLoader: string;
  try {
    tsxLoader = import.meta.resolve('tsx');
  } catch {
    log.warn('test models not generated (dev dependencies are not installed)');
    return;
  }
  const generator = path.join(REPO_ROOT, 'models', 'tools', 'generate-test-models.ts');
  const generated = spawnSync(process.execPath, ['--import', tsxLoader, generator], {
    stdio: 'inherit',
    env: { ...process.env, MODELHUB_GENERATED_DIR: config.MODELHUB_GENERATED_DIR },
  });
  if (generated.status !== 0) throw new Error(`${generator} failed (${generated.status ?? generated.signal})`);
}

/** Makes sure the Redis the processes will use answers, starting a private one if that is the default URL. */
async function ensureRedis(): Promise<void> {
  if (config.REDIS_CLUSTER_NODES) return; // a cluster is never started here; the processes report if it is down
  const url = config.REDIS_URL;
  if (await redisAnswers(url)) {
    log.info({ url }, 'using the Redis already running');
  } else if (url !== DEFAULT_REDIS_URL) {
    log.fatal({ url }, 'REDIS_URL does not answer');
    process.exit(1);
  } else if (redisServerInstalled()) {
    localRedis = await startLocalRedis(6379);
    children.push(localRedis);
    log.info({ url }, 'started a local redis-server (no persistence; for production set REDIS_URL)');
  } else {
    log.fatal(
      'no Redis answers on 127.0.0.1:6379 and redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL',
    );
    process.exit(1);
  }
}

async function main(): Promise<void> {
  generateTestModels(config, log);
  await ensureRedis();
  run('api', 'api/main');
  // Through the fleet launcher, which restarts a worker that dies (e.g. a crashed session thread).
  run('worker', 'worker/fleet', ['--devices', config.MODELHUB_DEVICE, '--models', config.MODELHUB_MODELS]);
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
}

main().catch((err) => {
  log.fatal({ err }, 'start failed');
  stopAll(1);
});
