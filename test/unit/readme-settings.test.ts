/**
 * The README's configuration table is the users' list of settings: it names every setting of
 * the schema (shared/config.ts) by its environment variable, nothing else (but OTEL_*, which the
 * OpenTelemetry SDK reads), and where a default is written as a plain value it is the schema's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, loadConfig, settingNames, envName, type Config } from '../../shared/config.js';

interface Row {
  names: string[];
  defaults: string[];
}

function configurationTable(): Row[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| variable | default | meaning |'));
  expect(start, 'README: the configuration table').toBeGreaterThan(0);
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [names, defaults] = line.split(' | ').map((c) => c.replace(/^\| /, ''));
    rows.push({
      names: [...names.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]),
      defaults: splitTopLevel(defaults),
    });
  }
  return rows;
}

/** "0 (half the cores, 1 to 4), 4000000" → ["0 (half the cores, 1 to 4)", "4000000"]. */
function splitTopLevel(cell: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < cell.length; i++) {
    const c = cell[i];
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && cell[i + 1] === ' ' && depth === 0) {
      parts.push(current.trim());
      current = '';
      i++;
    } else current += c;
  }
  parts.push(current.trim());
  return parts;
}

/** What a default cell says, when it says it plainly: a number, a `value`, unset or empty. */
function plainDefault(cell: string): { value: string | undefined } | null {
  if (/^unset\b/.test(cell)) return { value: undefined };
  if (/^empty\b/.test(cell)) return { value: '' };
  const number = /^(\d+)\b/.exec(cell);
  if (number) return { value: number[1] };
  const code = /^`([^`]*)`/.exec(cell);
  if (code) return { value: code[1] };
  return null;
}

describe('README configuration table', () => {
  const rows = configurationTable();
  const listed = rows.flatMap((r) => r.names).filter((n) => !n.startsWith('OTEL_'));

  it('lists every setting of the schema by its environment variable, each once, and no other', () => {
    expect([...listed].sort()).toEqual([...settingNames()].sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('gives the schema’s default where it writes one plainly', () => {
    const defaults = loadConfig({}) as Record<string, unknown>;
    const byName = new Map(Object.keys(defaults).map((key) => [envName(key), key as keyof Config]));
    let checked = 0;
    for (const row of rows) {
      if (row.names.length !== row.defaults.length) continue;
      row.names.forEach((name, i) => {
        const key = byName.get(name);
        const said = plainDefault(row.defaults[i]);
        if (!key || !said) return;
        // Folders in the repository are written relative to it, as folders: `models/`.
        const actual = defaults[key];
        const shown =
          typeof actual === 'string' && actual.startsWith(REPO_ROOT + path.sep)
            ? `${path.relative(REPO_ROOT, actual)}/`
            : actual;
        expect(shown === undefined ? undefined : String(shown), `README default of ${name}`).toBe(said.value);
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(40);
  });
});
