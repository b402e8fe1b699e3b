/**
 * Once per test run: generate the test models, and make sure a Redis answers. With REDIS_URL
 * unset and nothing on 127.0.0.1:6379, a private redis-server is started on a free port for the
 * run (so `npm test` works on a machine where Redis is installed but not running).
 */
import type { ChildProcess } from 'node:child_process';
import { generateTestModels } from '../../models/tools/generate-test-models.js';
import { redisAnswers, redisServerInstalled, startLocalRedis } from '../../deploy/local/redis.js';
import { freePort } from './hub.js';

let privateRedis: ChildProcess | null = null;

export default async function setup(): Promise<() => void> {
  generateTestModels();
  if (!process.env.REDIS_URL && !(await redisAnswers('redis://127.0.0.1:6379'))) {
    if (!redisServerInstalled()) throw new Error('the tests need Redis: none answers on 127.0.0.1:6379, REDIS_URL is unset, and redis-server is not installed');
    const port = await freePort();
    privateRedis = await startLocalRedis(port);
    process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  }
  return () => {
    privateRedis?.kill('SIGTERM');
  };
}
