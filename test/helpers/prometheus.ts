/**
 * Reading Prometheus text expositions and the PromQL in the deploy files, for the test that the
 * dashboards, alert rules and KEDA queries use only what the hub exports.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Family {
  type: string;
  /** Label names seen on its series (the `component` default label included). */
  labels: Set<string>;
  /** Series seen (a family declared with labels has none until one is observed). */
  series: number;
}

/** Metric families of an exposition, by name (a histogram's _bucket/_sum/_count count as its own). */
export function families(page: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const line of page.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) out.set(type[1], { type: type[2], labels: new Set(), series: 0 });
  }
  for (const line of page.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    const family = out.get(m[1]) ?? out.get(m[1].replace(/_(bucket|sum|count)$/, ''));
    if (!family) continue;
    family.series++;
    for (const l of (m[2] ?? '').matchAll(/(\w+)="/g)) family.labels.add(l[1]);
  }
  return out;
}

/** The name a series reference in PromQL belongs to: a histogram's parts name the histogram. */
export function familyOf(name: string, known: Map<string, Family>): string | null {
  if (known.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return known.get(base)?.type === 'histogram' || known.get(base)?.type === 'summary' ? base : null;
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

export interface Selector {
  metric: string;
  /** Label names its matchers use. */
  labels: string[];
}

export interface QueryRefs {
  selectors: Selector[];
  /** Labels of by (...) / without (...) clauses. */
  grouping: string[];
}

/** The metric selectors and grouping labels of a PromQL expression (Grafana variables allowed). */
export function promqlRefs(expr: string): QueryRefs {
  const text = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const grouping = [...text.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const bare = text.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const selectors: Selector[] = [];
  for (const m of bare.matchAll(/(?<![\w$:.])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = m;
    if (call || KEYWORDS.has(name.toLowerCase())) continue; // a function, or an operator word
    const labels = matchers ? [...matchers.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]) : [];
    selectors.push({ metric: name, labels });
  }
  return { selectors, grouping };
}

/** Grafana's query variables, replaced by what Prometheus would see. */
export function grafanaToPromql(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__range|\$__interval/g, '5m').replace(/\$\{?\w+\}?/g, '.*');
}

export interface DeployQuery {
  file: string;
  expr: string;
}

/** Every PromQL query of the Grafana dashboards, the alert rules and the KEDA triggers. */
export function deployQueries(root: string): DeployQuery[] {
  const out: DeployQuery[] = [];
  const grafana = path.join(root, 'deploy/grafana');
  for (const name of fs.readdirSync(grafana).filter((f) => f.endsWith('.json'))) {
    const file = path.join('deploy/grafana', name);
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'expr' && typeof v === 'string') out.push({ file, expr: grafanaToPromql(v) });
          else if (k === 'query' && typeof v === 'string' && v.startsWith('label_values(')) {
            const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v);
            if (m) out.push({ file, expr: `sum by (${m[2]}) (${grafanaToPromql(m[1])})` });
          } else walk(v);
        }
      }
    };
    walk(JSON.parse(fs.readFileSync(path.join(root, file), 'utf8')));
  }
  for (const file of ruleFiles(root)) {
    for (const m of fs.readFileSync(path.join(root, file), 'utf8').matchAll(/^\s*(?:- )?expr:\s*(.+)$/gm))
      out.push({ file, expr: m[1].trim() });
  }
  const optional = 'deploy/kubernetes/optional';
  for (const name of fs.readdirSync(path.join(root, optional)).filter((f) => f.startsWith('keda-'))) {
    const file = path.join(optional, name);
    for (const m of fs.readFileSync(path.join(root, file), 'utf8').matchAll(/^\s*query:\s*(.+)$/gm))
      out.push({ file, expr: m[1].trim() });
  }
  return out;
}

/** The Prometheus rule files under deploy/ (YAML files with a top-level `groups:`). */
export function ruleFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (/\.ya?ml$/.test(entry.name) && /^groups:/m.test(fs.readFileSync(path.join(root, rel), 'utf8')))
        found.push(rel);
    }
  };
  walk('deploy');
  return found;
}

/** promtool's path, or null where Prometheus's tools are not installed (Debian: apt-get install prometheus). */
export function promtool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'promtool');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** Runs promtool; resolves its exit status and output (never rejects on a non-zero status). */
export async function runPromtool(
  bin: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim() });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}
