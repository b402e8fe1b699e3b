/**
 * The metrics contract (issue 26), against live expositions of the API, a worker and the webhook
 * delivery process after real traffic (a job with a webhook, a batch, a refused submission):
 * - Prometheus's own linter accepts each of them (`promtool check metrics`; prom-client's default
 *   gauges named `_total` failed it), and the naming rules it applies hold without promtool too;
 * - every rule file passes `promtool check rules` (and the alerts their unit tests,
 *   `promtool test rules`), the Prometheus config passes `promtool check config --syntax-only`,
 *   and every dashboard and KEDA query parses as PromQL;
 * - every metric the Grafana dashboards, the alert rules and the KEDA queries use is one the hub
 *   exports, with the labels they select and group by; every `modelhub_*` name the docs and
 *   manifests mention is exported too.
 * The promtool checks are skipped, saying so, where Prometheus's tools are not installed
 * (Debian's `prometheus` package; `.ci/run` installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { postJsonl, pollBatch } from '../helpers/batches.js';
import { freePort, pollJob, postJson, startHub, type Hub } from '../helpers/hub.js';
import { b64, textLineImage } from '../helpers/images.js';
import {
  deployQueries,
  families,
  familyOf,
  promqlRefs,
  promtool,
  ruleFiles,
  runPromtool,
  type Family,
} from '../helpers/prometheus.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const SECRET = `whsec_${Buffer.from('metrics-contract-webhook-secret!').toString('base64')}`;
/** Names the deploy files use from other exporters (redis_exporter, for the Redis memory alerts). */
const OTHER_EXPORTERS = new Set(['redis_memory_used_bytes', 'redis_memory_max_bytes']);
/** Docs and manifests whose `modelhub_*` names must be exported. */
const DOCS = [
  'README.md',
  'deploy/README.md',
  'docs/api.md',
  'docs/performance.md',
  'deploy/prometheus/prometheus.yml',
];

const PROMTOOL = promtool();
if (!PROMTOOL)
  console.warn('promtool checks skipped: promtool is absent (apt-get install prometheus; .ci/run installs it)');

let hub: Hub;
let webhooks: ChildProcess;
let receiver: Receiver;
const pages: Record<'api' | 'worker' | 'webhooks', string> = { api: '', worker: '', webhooks: '' };
let exported: Map<string, Family>;

async function startWebhooks(env: Record<string, string>): Promise<{ child: ChildProcess; metricsUrl: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'webhooks/main.ts')], {
    env: { ...process.env, ...env, METRICS_PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const metricsUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the webhooks process exited (${child.exitCode})`);
    if (
      await fetch(`${metricsUrl}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 600) throw new Error('the webhooks process did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, metricsUrl };
}

beforeAll(async () => {
  const env = {
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
    WEBHOOK_DELIVERY: 'off', // delivered by the webhooks process, as deployed
    BATCH_CHUNK_SIZE: '2',
  };
  hub = await startHub({ name: 'contract', models: 'text-direction', env });
  const started = await startWebhooks(hub.env);
  webhooks = started.child;
  receiver = await startReceiver();

  const image = b64(await textLineImage('Metrics'));
  const submitted = await postJson(`${hub.url}/v1/models/text-direction/jobs`, {
    input: { image },
    webhook: receiver.url,
  });
  expect(submitted.status).toBe(202);
  expect((await pollJob(hub.url, submitted.body.id)).status).toBe('succeeded');
  await receiver.waitFor(2);
  const batch = await postJsonl(
    `${hub.url}/v1/models/text-direction/batches`,
    [0, 1, 2].map(() => JSON.stringify({ image })),
  );
  expect(batch.status).toBe(202);
  await pollBatch(hub.url, batch.body.id);
  expect((await postJson(`${hub.url}/v1/models/text-direction/jobs`, { input: { image: 'bm90' } })).status).toBe(400);

  pages.api = await (await fetch(`${hub.api.metricsUrl}/metrics`)).text();
  pages.worker = await (await fetch(`${hub.workers[0].metricsUrl}/metrics`)).text();
  // The webhook deliveries' counters, once the delivery of the second event has been counted.
  for (let i = 0; i < 100; i++) {
    pages.webhooks = await (await fetch(`${started.metricsUrl}/metrics`)).text();
    if (
      (pages.webhooks.match(/^modelhub_webhook_deliveries_total\{.*outcome="delivered".*\} (\d+)/m)?.[1] ?? '0') === '2'
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  exported = new Map([...families(pages.api), ...families(pages.worker), ...families(pages.webhooks)]);
  // Label names seen on any process (the same family may be served by several, with its own series).
  for (const page of Object.values(pages))
    for (const [name, f] of families(page)) {
      const all = exported.get(name)!;
      f.labels.forEach((l) => all.labels.add(l));
      all.series = Math.max(all.series, f.series);
    }
});

afterAll(async () => {
  webhooks?.kill('SIGTERM');
  await receiver?.close();
  await hub?.stop();
});

describe('the expositions', () => {
  it("label each process with its component, the webhook delivery process's own included", () => {
    expect(pages.api).toMatch(/^modelhub_process_process_start_time_seconds\{component="api"\}/m);
    expect(pages.worker).toMatch(/^modelhub_process_process_start_time_seconds\{component="worker"\}/m);
    expect(pages.webhooks).toMatch(/^modelhub_process_process_start_time_seconds\{component="webhooks"\}/m);
    expect(pages.webhooks).toMatch(
      /^modelhub_webhook_deliveries_total\{event="completed",outcome="delivered",component="webhooks"\} 1$/m,
    );
  });

  it('name counters, and only counters, with _total (what promtool check metrics enforces)', () => {
    for (const [process, page] of Object.entries(pages)) {
      const misnamed = [...families(page)]
        .filter(([name, f]) => (f.type === 'counter') !== name.endsWith('_total'))
        .map(([name, f]) => `${process}: ${name} (${f.type})`);
      expect(misnamed).toEqual([]);
    }
  });

  it.skipIf(!PROMTOOL)('pass promtool check metrics', async () => {
    for (const [process, page] of Object.entries(pages)) {
      const { code, output } = await runPromtool(PROMTOOL!, ['check', 'metrics'], page);
      expect({ process, code, output }).toEqual({ process, code: 0, output: '' });
    }
  });
});

describe('the deploy files', () => {
  const queries = deployQueries(REPO_ROOT);

  it('use only metrics the hub exports (or, named here, other exporters), with the labels they select and group by', () => {
    expect(queries.length).toBeGreaterThan(30);
    const problems: string[] = [];
    for (const { file, expr } of queries) {
      const { selectors, grouping } = promqlRefs(expr);
      expect(selectors.length, `${file}: ${expr}`).toBeGreaterThan(0);
      const hub = selectors.filter((s) => !OTHER_EXPORTERS.has(s.metric));
      for (const s of hub) {
        const family = familyOf(s.metric, exported);
        if (!family) {
          problems.push(`${file}: ${s.metric} is not exported`);
          continue;
        }
        const f = exported.get(family)!;
        if (f.series === 0) continue; // declared, no series yet (e.g. no inference error happened): names only
        const labels = new Set([...f.labels, ...(f.type === 'histogram' ? ['le'] : [])]);
        for (const l of s.labels) if (!labels.has(l)) problems.push(`${file}: ${s.metric} has no label ${l}`);
        // Grouping labels must exist on what is grouped (one hub metric per query here).
        if (new Set(hub.map((x) => familyOf(x.metric, exported))).size === 1)
          for (const l of grouping)
            if (!labels.has(l)) problems.push(`${file}: ${s.metric} has no label ${l} to group by`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('name only exported modelhub_* metrics in the docs and manifests', () => {
    const files = [
      ...DOCS,
      ...fs
        .readdirSync(path.join(REPO_ROOT, 'deploy/kubernetes/optional'))
        .map((f) => `deploy/kubernetes/optional/${f}`),
    ];
    const missing: string[] = [];
    for (const file of files) {
      const text = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
      for (const [name] of text.matchAll(/\bmodelhub_[a-z0-9_]*[a-z0-9_*]/g)) {
        const ok =
          name.endsWith('*') || name.endsWith('_')
            ? [...exported.keys()].some((n) => n.startsWith(name.replace(/\*$/, '')))
            : familyOf(name, exported) !== null;
        if (!ok) missing.push(`${file}: ${name}`);
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  it('keep the API metrics port in every scrape manifest (the public port serves no /metrics)', () => {
    const podMonitor = fs.readFileSync(path.join(REPO_ROOT, 'deploy/kubernetes/optional/podmonitor.yaml'), 'utf8');
    expect(podMonitor).not.toMatch(/port:\s*http\b/);
    const api = fs.readFileSync(path.join(REPO_ROOT, 'deploy/kubernetes/api.yaml'), 'utf8');
    expect(api).toMatch(/prometheus\.io\/port:\s*"9463"/);
    expect(api).toMatch(/- name: metrics\s+containerPort: 9463/);
  });

  it.skipIf(!PROMTOOL)('pass promtool: every rule file, the Prometheus config, and every query as PromQL', async () => {
    const rules = ruleFiles(REPO_ROOT);
    expect(rules).toContain(path.join('deploy', 'prometheus', 'alerts.yml'));
    for (const file of rules) {
      const { code, output } = await runPromtool(PROMTOOL!, ['check', 'rules', path.join(REPO_ROOT, file)]);
      expect({ file, code, output }).toMatchObject({ file, code: 0 });
    }
    // The alert rules' own unit tests (the queue-stuck alert fires after its five minutes, not before).
    const alertTests = await runPromtool(PROMTOOL!, [
      'test',
      'rules',
      path.join(REPO_ROOT, 'deploy/prometheus/alerts.test.yml'),
    ]);
    expect(alertTests).toMatchObject({ code: 0 });
    const config = await runPromtool(PROMTOOL!, [
      'check',
      'config',
      '--syntax-only',
      path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'),
    ]);
    expect(config).toMatchObject({ code: 0 });
    // The dashboards' and KEDA's queries, each as a recording rule: promtool parses its PromQL.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-promql-'));
    try {
      const file = path.join(dir, 'queries.yml');
      const rulesText = queries
        .map((q, i) => `      - record: query_${i}\n        expr: ${JSON.stringify(q.expr)}`)
        .join('\n');
      fs.writeFileSync(file, `groups:\n  - name: deploy-queries\n    rules:\n${rulesText}\n`);
      const parsed = await runPromtool(PROMTOOL!, ['check', 'rules', file]);
      expect(parsed).toMatchObject({ code: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
