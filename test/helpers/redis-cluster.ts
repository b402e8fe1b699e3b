/** A private three-master Redis Cluster on loopback (redis-server --cluster-enabled + redis-cli --cluster create). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { redisAnswers } from '../../deploy/local/redis.js';
import net from 'node:net';

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A node needs its port and the cluster bus port (port + 10000) free, so ephemeral ports won't do. */
async function freeClusterPort(taken: number[]): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (taken.includes(port)) continue;
    if ((await bindable(port)) && (await bindable(port + 10000))) return port;
  }
  throw new Error('no free port pair for a cluster node');
}

export interface PrivateCluster {
  nodes: string;
  stop(): Promise<void>;
}

export async function startPrivateCluster(size = 3): Promise<PrivateCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-cluster-'));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < size; i++) {
    const port = await freeClusterPort(ports);
    ports.push(port);
    const nodeDir = path.join(dir, String(port));
    fs.mkdirSync(nodeDir);
    children.push(
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--dir',
          nodeDir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      ),
    );
  }
  const stop = async () => {
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r).kill('SIGKILL')) : null)),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      for (let i = 0; !(await redisAnswers(`redis://127.0.0.1:${port}`, 200)); i++) {
        if (i > 50) throw new Error(`cluster node ${port} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (let i = 0; ; i++) {
      const info = spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (info.includes('cluster_state:ok')) break;
      if (i > 100) throw new Error('cluster did not become ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), stop };
}
