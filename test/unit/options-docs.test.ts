/**
 * Each component's options type documents its fields where it is defined, BullMQ-style, with
 * `@defaultValue`. Where that default is written plainly (a number, a `value`, true/false, unset)
 * it must be what the resolver gives for an empty environment, so a new setting's documented
 * default is checked without a test of its own (as test/unit/readme-settings.test.ts checks the
 * README's table).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, loadConfig } from '../../shared/config.js';
import { apiOptions } from '../../shared/options/api.js';
import { batcherOptions } from '../../shared/options/batcher.js';
import { intakeOptions } from '../../shared/options/intake.js';
import { tenancyOptions } from '../../shared/options/tenancy.js';
import { fleetOptions, taskOptions, workerOptions } from '../../shared/options/worker.js';
import { webhookOptions } from '../../shared/webhooks/options.js';

const config = loadConfig({});
/** Per options file, each interface it defines and what its resolver gives by default. */
const RESOLVED: Record<string, Record<string, object>> = {
  'shared/options/api.ts': { ApiOptions: apiOptions(config) },
  'shared/options/batcher.ts': { BatcherOptions: batcherOptions(config) },
  'shared/options/intake.ts': { IntakeOptions: intakeOptions(config) },
  'shared/options/tenancy.ts': { TenancyOptions: tenancyOptions(config) },
  'shared/options/worker.ts': {
    SessionTuning: workerOptions(config).session,
    TaskOptions: taskOptions(config),
    WorkerOptions: workerOptions(config),
    FleetOptions: fleetOptions(config),
  },
  'shared/webhooks/options.ts': { WebhookOptions: webhookOptions(config) },
};

interface Field {
  name: string;
  doc: string;
}

function interfaces(file: string): Map<string, Field[]> {
  const source = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const found = new Map<string, Field[]>();
  for (const m of source.matchAll(/^export interface (\w+)[^{]*\{\n([\s\S]*?)^\}/gm)) {
    const fields = [...m[2].matchAll(/\/\*\*([\s\S]*?)\*\/\s*(\w+)\??:/g)].map((f) => ({ name: f[2], doc: f[1] }));
    found.set(m[1], fields);
  }
  return found;
}

/** What an `@defaultValue` says when it says it plainly; null otherwise (prose, a formula). */
function plainDefault(doc: string): { value: unknown } | null {
  const said = /@defaultValue\s+([^\n]*)/.exec(doc)?.[1].replace(/\*\/$/, '').trim();
  if (said === undefined) return null;
  if (/^unset\b/.test(said)) return { value: undefined };
  const number = /^(\d+)(?=\s*(\(|$))/.exec(said);
  if (number) return { value: Number(number[1]) };
  const flag = /^(true|false)\b/.exec(said);
  if (flag) return { value: flag[1] === 'true' };
  const code = /^`([^`]*)`/.exec(said);
  if (code) return { value: code[1] === "''" ? '' : code[1] === '{}' ? {} : code[1] };
  return null;
}

describe('options types: documented where they are defined', () => {
  for (const [file, resolved] of Object.entries(RESOLVED)) {
    it(`${file}: every field has a doc comment, and each plain @defaultValue is the resolved default`, () => {
      const types = interfaces(file);
      expect([...types.keys()].sort(), `${file}: its options types`).toEqual(Object.keys(resolved).sort());
      for (const [type, fields] of types) {
        const defaults = resolved[type] as Record<string, unknown>;
        expect(fields.map((f) => f.name).sort(), `${type}: documented fields`).toEqual(Object.keys(defaults).sort());
        let checked = 0;
        for (const field of fields) {
          const said = plainDefault(field.doc);
          if (!said) continue;
          expect(defaults[field.name], `${type}.${field.name}: its @defaultValue`).toEqual(said.value);
          checked++;
        }
        expect(checked, `${type}: fields whose default is checked`).toBeGreaterThan(0);
      }
    });
  }
});
