/**
 * The SDK's types and methods checked against the hub's own /openapi.json: every operationId is
 * an SDK method (a model's own path adds `.<model>` to it); each task's input type has exactly the schema's fields, optional where the
 * schema has a default, with the same value types; the job, catalog, submit and error shapes
 * agree; each task's output type names the fields the catalog documents.
 */
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../shared/config.js';
import { TASKS } from '../../shared/tasks.js';
import { ErrorCodes, ModelHub, statusOfErrorCode } from '../../clients/typescript/lib/index.js';
import { startHub, type Hub } from '../helpers/hub.js';

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  title?: string;
  additionalProperties?: unknown;
  $ref?: string;
};

/** A `#/components/schemas/…` reference, resolved. */
const deref = (s: JsonSchema): JsonSchema =>
  s.$ref ? doc.components.schemas[s.$ref.replace('#/components/schemas/', '')] : s;

let hub: Hub;
let doc: any;
beforeAll(async () => {
  hub = await startHub({ name: 'sdkcontract', workers: 0 });
  doc = await (await fetch(`${hub.url}/openapi.json`)).json();
});
afterAll(async () => hub?.stop());

// The SDK's declarations, read with the TypeScript compiler.
const typesFile = path.join(REPO_ROOT, 'clients/typescript/src/types.ts');
const program = ts.createProgram([typesFile], { strict: true, target: ts.ScriptTarget.ES2022, noEmit: true });
const checker = program.getTypeChecker();
const source = program.getSourceFile(typesFile)!;
const declared = new Map<string, ts.Type>();
ts.forEachChild(source, (node) => {
  if ((ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) && node.name)
    declared.set(node.name.text, checker.getTypeAtLocation(node.name));
});
const typeNamed = (name: string) => {
  const t = declared.get(name);
  if (!t) throw new Error(`clients/typescript/src/types.ts declares no ${name}`);
  return t;
};

/** A value type as a set of kinds: 'string', 'number', 'boolean', 'object', 'array', 'null' or a "literal". */
function tsKinds(type: ts.Type): Set<string> {
  const kinds = new Set<string>();
  const members = type.isUnion() ? type.types : [type];
  for (const m of members) {
    if (m.flags & ts.TypeFlags.Undefined) continue;
    if (m.isStringLiteral()) kinds.add(JSON.stringify(m.value));
    else if (m.isNumberLiteral()) kinds.add('number');
    else if (m.flags & ts.TypeFlags.BooleanLiteral || m.flags & ts.TypeFlags.Boolean) kinds.add('boolean');
    else if (m.flags & ts.TypeFlags.String) kinds.add('string');
    else if (m.flags & ts.TypeFlags.Number) kinds.add('number');
    else if (m.flags & ts.TypeFlags.Null) kinds.add('null');
    else if (checker.isArrayType(m) || checker.isTupleType(m)) kinds.add('array');
    else if (m.flags & ts.TypeFlags.Object) kinds.add('object');
    else if (m.flags & ts.TypeFlags.Unknown || m.flags & ts.TypeFlags.Any) kinds.add('any');
    else kinds.add(checker.typeToString(m));
  }
  return kinds;
}

function schemaKinds(s: JsonSchema): Set<string> {
  if (s.anyOf || s.oneOf) return new Set((s.anyOf ?? s.oneOf)!.flatMap((x) => [...schemaKinds(x)]));
  if (s.const !== undefined) return new Set([typeof s.const === 'string' ? JSON.stringify(s.const) : typeof s.const]);
  if (s.enum) return new Set(s.enum.map((v) => (typeof v === 'string' ? JSON.stringify(v) : typeof v)));
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : ['any'];
  return new Set(types.map((t) => (t === 'integer' ? 'number' : t)));
}

interface Field {
  optional: boolean;
  kinds: string[];
}

function tsFields(type: ts.Type): Record<string, Field> {
  const out: Record<string, Field> = {};
  for (const p of checker.getPropertiesOfType(type)) {
    if (p.name.startsWith('__')) continue;
    const t = checker.getTypeOfSymbol(p);
    out[p.name] = { optional: (p.flags & ts.SymbolFlags.Optional) !== 0, kinds: [...tsKinds(t)].sort() };
  }
  return out;
}

function schemaFields(s: JsonSchema): Record<string, Field> {
  const out: Record<string, Field> = {};
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    out[name] = { optional: !(s.required ?? []).includes(name), kinds: [...schemaKinds(prop)].sort() };
  }
  return out;
}

/** The task of TaskInputs[task] / TaskOutputs[task]. */
const member = (container: string, key: string) => {
  const prop = checker.getPropertyOfType(typeNamed(container), key);
  if (!prop) throw new Error(`${container} has no "${key}"`);
  return checker.getTypeOfSymbol(prop);
};

describe('SDK against /openapi.json', () => {
  it('every operation is an SDK method of the same name', () => {
    const ids = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap((ops) =>
      Object.values(ops).map((o) => o.operationId),
    );
    expect(ids.length).toBeGreaterThanOrEqual(12);
    for (const id of ids.map((i) => i.split('.')[0]))
      expect(typeof (ModelHub.prototype as unknown as Record<string, unknown>)[id], `ModelHub.${id}()`).toBe(
        'function',
      );
  });

  it("each task's input type has the schema's fields, optionality and value types", () => {
    const inputs = (
      doc.paths['/v1/models/{model}/predict'].post.requestBody.content['application/json'].schema.anyOf as JsonSchema[]
    ).map(deref);
    expect(inputs.map((s) => s.title).sort()).toEqual(Object.keys(TASKS).sort());
    for (const schema of inputs) {
      expect(schema.additionalProperties).toBe(false);
      expect({ task: schema.title, fields: tsFields(member('TaskInputs', schema.title!)) }).toEqual({
        task: schema.title,
        fields: schemaFields(schema),
      });
    }
  });

  it('the submit body, job, catalog and spec error types match their schemas', () => {
    const submit = doc.paths['/v1/models/{model}/jobs'].post;
    const submitSchema = submit.requestBody.content['application/json'].schema as JsonSchema;
    const body = tsFields(typeNamed('SubmitBody'));
    // `input` is typed per task in the SDK, an open object in the schema.
    expect(body.input.optional).toBe(false);
    expect({ ...body, input: undefined }).toEqual({ ...schemaFields(submitSchema), input: undefined });

    const jobSchema = doc.paths['/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema as JsonSchema;
    const job = tsFields(typeNamed('Job'));
    expect(Object.keys(job).sort()).toEqual(Object.keys(jobSchema.properties!).sort());
    for (const [name, f] of Object.entries(schemaFields(jobSchema)))
      expect({ name, optional: job[name].optional }).toEqual({ name, optional: f.optional });
    expect(job.status.kinds).toEqual(schemaFields(jobSchema).status.kinds);

    const catalog = doc.paths['/v1/models'].get.responses['200'].content['application/json'].schema as JsonSchema;
    expect(tsFields(typeNamed('ModelSummary'))).toEqual(schemaFields(catalog.properties!.models.items!));

    expect(tsFields(typeNamed('SpecErrorBody'))).toEqual({
      ...schemaFields(doc.components.schemas.SpecError),
      success: { optional: false, kinds: ['boolean'] },
    });
  });

  it("each task's output type has the fields and optionality of the document's answer for that task", () => {
    const outputs = (
      doc.paths['/v1/models/{model}/predict'].post.responses['200'].content['application/json'].schema
        .anyOf as JsonSchema[]
    ).map(deref);
    expect(outputs.map((s) => s.title).sort()).toEqual(Object.keys(TASKS).sort());
    const shape = (fields: Record<string, Field>) =>
      Object.fromEntries(Object.entries(fields).map(([name, f]) => [name, f.optional]));
    // A predict answer is the task's output and the answer's metrics (PredictAnswer in the SDK).
    for (const schema of outputs) {
      const { metrics, ...fields } = schemaFields(schema);
      expect({ task: schema.title, fields: shape(tsFields(member('TaskOutputs', schema.title!))) }).toEqual({
        task: schema.title,
        fields: shape(fields),
      });
      expect(metrics?.kinds).toEqual(['object']);
      expect(tsFields(typeNamed('PredictMetrics'))).toEqual(schemaFields(schema.properties!.metrics));
    }
  });

  it("the SDK's error codes are the document's, with the status every answer listing one gives it", () => {
    const documented = (doc.components.schemas.SpecError.properties.error_code.anyOf as JsonSchema[]).map((c) => [
      c.title,
      c.const,
    ]);
    expect(documented.length).toBeGreaterThan(20);
    const byCode = (a: unknown[], b: unknown[]) => Number(a[1]) - Number(b[1]);
    expect(
      Object.entries(ErrorCodes)
        .map(([name, e]) => [name, e.code])
        .sort(byCode),
    ).toEqual(documented.sort(byCode));
    let checked = 0;
    for (const [route, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>))
      for (const [method, op] of Object.entries(ops))
        for (const [status, answer] of Object.entries(op.responses as Record<string, any>))
          for (const code of answer.content?.['application/json']?.schema?.properties?.error_code?.enum ?? []) {
            expect({ at: `${method} ${route}`, code, status: statusOfErrorCode(code) }).toEqual({
              at: `${method} ${route}`,
              code,
              status: Number(status),
            });
            checked++;
          }
    expect(checked).toBeGreaterThan(100);
  });

  it("each task's output type names the fields the hub documents for it", async () => {
    const sdk = new ModelHub({ url: hub.url });
    const seen = new Set<string>();
    for (const m of await sdk.models()) {
      if (seen.has(m.task)) continue;
      seen.add(m.task);
      const documented = Object.keys((await sdk.model(m.name)).output.fields).sort();
      const typed = Object.keys(tsFields(member('TaskOutputs', m.task)))
        .filter((k) => !['request_id', 'success', 'error_code'].includes(k))
        .sort();
      expect({ task: m.task, fields: typed }).toEqual({ task: m.task, fields: documented });
    }
    expect([...seen].sort()).toEqual(Object.keys(TASKS).sort());
  });
});
