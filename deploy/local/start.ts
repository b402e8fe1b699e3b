/**
 * `npm start`: the whole hub on one machine — Redis (a local one is started when REDIS_URL is
 * unset and nothing answers on 127.0.0.1:6379), the API, and one CPU worker serving every
 * available model. Ctrl-C stops everything. In production run `npm run start:api` and
 * `npm run start:worker` (or the fleet launcher) as separate processes instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { generateTestModels } from '../../models/tools/generate-test-models.js';
import { redisAnswers, redisServerInstalled, startLocalRedis } from './redis.js';

const log = createLogger('start');
const children: ChildProcess[] = [];
let localRedis: ChildProcess | null = null;
let stopping = false;

const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

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

function run(name: string, script: string, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, script), ...args], { stdio: 'inherit', env: process.env });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      log.error({ process: name, code, signal }, `${name} exited; stopping the hub`);
      stopAll(1);
    }
  });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  const generated = generateTestModels();
  if (generated.length) log.info({ files: generated }, 'generated test models');

  if (!process.env.REDIS_URL) {
    const url = 'redis://127.0.0.1:6379';
    if (await redisAnswers(url)) {
      log.info({ url }, 'using the Redis already running');
    } else if (redisServerInstalled()) {
      localRedis = await startLocalRedis(6379);
      children.push(localRedis);
      log.info({ url }, 'started a local redis-server (no persistence; for production set REDIS_URL)');
    } else {
      log.fatal('no Redis answers on 127.0.0.1:6379 and redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL');
      process.exit(1);
    }
  } else if (!(await redisAnswers(process.env.REDIS_URL))) {
    log.fatal({ url: process.env.REDIS_URL }, 'REDIS_URL does not answer');
    process.exit(1);
  }

  run('api', 'api/main.ts');
  // Through the fleet launcher, which restarts a worker that dies (e.g. a crashed session thread).
  run('worker', 'worker/fleet.ts', ['--devices', process.env.MODELHUB_DEVICE ?? 'cpu', '--models', process.env.MODELHUB_MODELS ?? 'all']);
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
}

main().catch((err) => {
  log.fatal({ err }, 'start failed');
  stopAll(1);
});
