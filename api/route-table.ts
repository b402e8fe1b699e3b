/**
 * The HTTP contract in one place: each route is one entry `{method, path, operationId, request
 * and response schemas, errors, handler}`. The same entries register the Express routes
 * (`mountRoutes`), produce /openapi.json (api/openapi.ts) and name the `route` label of the
 * request metrics (api/route-labels.ts), so none of the three can list a route the others lack.
 *
 * Adding a route: an entry in a file of api/routes/ (with its handler, or a call into a service),
 * the entry's list in api/routes/index.ts if the file is new, and its section in docs/api.md.
 */
import { Router, type RequestHandler } from 'express';
import type { z } from 'zod';
import type { ErrorKind } from '../shared/errors.js';
import type { TaskName } from '../shared/tasks.js';

/** A JSON Schema, written out (for `$ref`s to the document's components). */
export type JsonSchema = Record<string, unknown>;
/** A schema: zod (converted for the document) or JSON Schema as it is. */
export type Schema = z.ZodType | JsonSchema;

export type Method = 'get' | 'post' | 'delete';

export interface Reply {
  description: string;
  /** The body, by media type; absent: the answer's body is not described (e.g. Prometheus text). */
  content?: Record<string, Schema>;
  /** Extension fields of the media type (e.g. `x-item-schema` of a JSON Lines stream), by media type. */
  extensions?: Record<string, Record<string, unknown>>;
}

export interface Parameter {
  name: string;
  in: 'query' | 'header';
  description: string;
  required?: boolean;
  schema: Schema;
}

/** The parts of an operation that differ for one model: its task's own request and answers. */
export interface ModelVariant {
  body?: Record<string, Schema>;
  replies?: Record<string, Reply>;
}

export interface RouteDef {
  method: Method;
  /** As Express writes it: `/v1/models/:model/jobs`. */
  path: string;
  /** The SDK method that calls it (clients/typescript); a model's own path adds `.<model>`. */
  operationId: string;
  summary: string;
  description?: string;
  /** Operations endpoints: no key, none of the /v1 door's refusals (auth, rates, body checks). */
  open?: boolean;
  /** Query and header parameters (path parameters come from `path`). */
  parameters?: Parameter[];
  /** The request body, by media type (read as `io: 'input'`: defaults make fields optional). */
  body?: Record<string, Schema>;
  /** Extension fields of the body's media types (e.g. `x-item-schema` of a JSON Lines upload). */
  bodyExtensions?: Record<string, Record<string, unknown>>;
  /** Success answers by status. */
  replies: Record<string, Reply>;
  /** The spec errors the route itself answers; the door's (auth, rates, body checks) are added for /v1. */
  errors?: ErrorKind[];
  /** Served on another listener (its servers), not registered on this app. */
  servers?: JsonSchema[];
  /**
   * Routes under `/v1/models/:model/`: each served model's path (`/v1/models/yolox-nano/predict`)
   * describes that model's task with these schemas. A `{image}` body is valid for four tasks,
   * so one path with a `oneOf` of the tasks could not say which answer comes back.
   */
  perModel?: (task: TaskName) => ModelVariant;
  /** Express handlers, in order (a body reader, then the handler). */
  handlers: RequestHandler[];
}

/** An Express router serving the entries (those not served elsewhere). */
export function mountRoutes(routes: RouteDef[]): Router {
  const router = Router();
  for (const r of routes) if (!r.servers) router[r.method](r.path, ...r.handlers);
  return router;
}

/** `/v1/jobs/:id` → `/v1/jobs/{id}`. */
export const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');
