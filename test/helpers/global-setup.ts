/**
 * Once per test run: generate the test models, point MODELHUB_WEIGHTS_DIR at the real-weights
 * fixtures (../shared/weights) when that folder exists and the variable is unset, and make sure a Redis answers. With REDIS_URL
 * unset and nothing on 127.0.0.1:6379, a private redis-server is started on a free port for the
 * run (so `npm test` works on a machine where Redis is installed but not running).
 */
import type { ChildProcess } from 'node:child_process';
import { generateTestModels } from '../../models/tools/generate-test-models.js';
import { redisAnswers, redisServerInstalled, startLocalRedis } from '../../deploy/local/redis.js';
import { freePort } from './hub.js';
import { FIXTURE_WEIGHTS_DIR } from './weights.js';

let privateRedis: ChildProcess | null = null;

export default async function setup(): Promise<() => void> {
  generateTestModels();
  // Test files and the workers they start inherit it; tests of the generated stand-ins ask for them explicitly.
  if (!process.env.MODELHUB_WEIGHTS_DIR && FIXTURE_WEIGHTS_DIR) process.env.MODELHUB_WEIGHTS_DIR = FIXTURE_WEIGHTS_DIR;
  if (!process.env.REDIS_URL && !(await redisAnswers('redis://127.0.0.1:6379'))) {
    if (!redisServerInstalled())
      throw new Error(
        'the tests need Redis: none answers on 127.0.0.1:6379, REDIS_URL is unset, and redis-server is not installed',
      );
    const port = await freePort();
    privateRedis = await startLocalRedis(port);
    process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  }
  return () => {
    privateRedis?.kill('SIGTERM');
  };
}
