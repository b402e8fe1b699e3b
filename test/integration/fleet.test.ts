/** The fleet launcher: one worker per device, a killed worker restarted, SIGTERM drains all. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { freePort, getJson, startHub, type Hub } from '../helpers/hub.js';

let hub: Hub;
beforeAll(async () => {
  hub = await startHub({ name: 'fleet', models: 'resnet50', workers: 0, env: { MODELHUB_HEARTBEAT_MS: '300' } });
});
afterAll(async () => hub?.stop());

async function liveWorkers(): Promise<any[]> {
  return (await getJson(`${hub.url}/v1/workers`)).body.workers;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('fleet launcher', () => {
  it('runs one worker per device, restarts a killed one, and drains all on SIGTERM', async () => {
    const base = await freePort();
    const fleet = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'worker/fleet.ts'), '--devices', 'cpu x2', '--models', 'resnet50'],
      {
        env: {
          ...process.env,
          ...hub.env,
          METRICS_PORT: String(base),
          FLEET_RESTART_BASE_MS: '200',
          LOG_LEVEL: 'warn',
        },
        stdio: 'ignore',
      },
    );
    const exited = new Promise<number | null>((r) => fleet.once('exit', (code) => r(code)));
    try {
      const first = await until('two workers', async () => {
        const w = await liveWorkers();
        return w.length === 2 && w;
      });
      expect(new Set(first.map((w) => w.pid)).size).toBe(2);
      // Worker i serves metrics on METRICS_PORT + i.
      for (const i of [0, 1]) expect((await fetch(`http://127.0.0.1:${base + i}/healthz`)).status).toBe(200);

      process.kill(first[0].pid, 'SIGKILL');
      const replaced = await until('a restarted worker', async () => {
        const w = await liveWorkers();
        return w.length === 2 && !w.some((x) => x.pid === first[0].pid) && w;
      });
      expect(replaced.some((w) => w.pid === first[1].pid)).toBe(true);

      fleet.kill('SIGTERM');
      expect(await exited).toBe(0);
      await until('no workers', async () => (await liveWorkers()).length === 0, 10_000);
    } finally {
      if (fleet.exitCode === null) fleet.kill('SIGKILL');
    }
  });
});
