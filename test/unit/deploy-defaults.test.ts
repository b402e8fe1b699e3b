/** Generated stand-ins stay out of production: every deploy default turns them off (npm start keeps them). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';

const read = (f: string) => fs.readFileSync(path.join(REPO_ROOT, f), 'utf8');

describe('deploy defaults', () => {
  it.each(['deploy/docker/Dockerfile', 'deploy/docker/Dockerfile.cuda'])('%s sets MODELHUB_TEST_MODELS=off', (f) => {
    expect(read(f)).toMatch(/^\s*(ENV .*)?MODELHUB_TEST_MODELS=off\b/m);
  });

  it.each(['docker-compose.yml', 'deploy/kubernetes/configmap.yaml'])('%s sets MODELHUB_TEST_MODELS: "off"', (f) => {
    const values = [...read(f).matchAll(/^\s*MODELHUB_TEST_MODELS:\s*(\S+)/gm)].map((m) => m[1]);
    expect(values).toEqual(['"off"']);
  });
});
