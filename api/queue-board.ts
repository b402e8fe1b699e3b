/**
 * The queue board for operators: @bull-board/express at /admin/queues, read-only, for admin keys
 * only. It answers "what is stuck in the queue?": every model's interactive queue, its batch
 * (bulk) lane and the webhook queue, job by job.
 *
 * Sign-in is HTTP Basic with an admin key as the password (any user name): a browser cannot
 * send a Bearer key when it navigates, and Basic needs no session, sign-in page or signing
 * secret shared by the API replicas: every request carries the key and is checked like a Bearer
 * key (constant time). Credentials a browser sends on its own invite cross-site requests; they can
 * change nothing here (every method but GET and HEAD is refused, below), and a page elsewhere cannot
 * read the answers (no CORS). Scripts may send `Authorization: Bearer <admin key>` instead.
 *
 * Read-only is enforced here, server-side: bull-board's own API retries, cleans, pauses, promotes,
 * removes, adds and edits jobs with PUT/POST/PATCH; any of them would bypass the hub's accounting
 * (tenant quotas, stored bytes, claims, webhooks), so only GET and HEAD reach the board. The
 * adapters' readOnlyMode hides those buttons too.
 *
 * A job's input images (and any very long string or array: a webhook's body, a mask) are elided
 * before the board shows them: an operator sees which job waits and why, not a tenant's photo.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { SpecError } from '../shared/errors.js';
import type { RedisClient } from '../shared/redis/connection.js';
import { WEBHOOK_QUEUE, bulkQueueName, modelQueueName } from '../shared/redis/keys.js';
import { callerOf, type KeyEntry } from './auth.js';
import { QUEUE_BOARD_PATH } from './route-labels.js';

export { QUEUE_BOARD_PATH };

export interface QueueBoardOptions {
  /** Redis connection for the board's reads (the API's read connection: never the one that submits). */
  connection: RedisClient;
  prefix: string;
  models: string[];
  /** MODELHUB_API_KEYS, parsed. */
  keys: KeyEntry[];
  /** Without keys: whether the API listens on loopback only (then the board is open, like the API). */
  loopbackOnly: boolean;
}

/** Longest string, and most array items, the board shows as they are. */
const MAX_SHOWN_CHARS = 512;
const MAX_SHOWN_ITEMS = 64;

/** A value as the board may show it: input images and very long strings or arrays replaced by a note. */
export function elideForBoard(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (key === 'image') return `[image: ${value.length} base64 characters, not shown]`;
    return value.length > MAX_SHOWN_CHARS ? `[${value.length} characters, not shown]` : value;
  }
  if (Array.isArray(value)) {
    return value.length > MAX_SHOWN_ITEMS ? `[${value.length} items, not shown]` : value.map((v) => elideForBoard(v));
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, elideForBoard(v, k)]));
  }
  return value;
}

const REALM = 'Basic realm="ModelHub queue board", charset="UTF-8"';
const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // the page's loading placeholder is styled inline
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The key a request presents: the password of HTTP Basic, or a Bearer token. */
export function presentedKey(header: string | undefined): string | null {
  if (!header) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : null;
}

/** Admins only, read-only (see the file comment). */
export function boardGuard(options: Pick<QueueBoardOptions, 'keys' | 'loopbackOnly'>) {
  return (req: Request, res: Response, next: NextFunction) => {
    // The board's answers carry job data: never cached, never framed by another site; its page
    // loads nothing from elsewhere (bull-board links a web font: it is refused, the system font shows).
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('content-security-policy', BOARD_CSP);
    if (options.keys.length === 0) {
      if (!options.loopbackOnly)
        return next(
          new SpecError(
            'FORBIDDEN',
            'the queue board needs an admin key: set MODELHUB_API_KEYS (key:tenant:admin); an open hub on a public address does not serve it',
          ),
        );
    } else {
      const key = presentedKey(req.get('authorization'));
      const caller = key === null ? null : callerOf(options.keys, key);
      if (!caller)
        return next(
          new SpecError(
            'UNAUTHORIZED',
            key === null
              ? 'the queue board needs an admin key: sign in with it as the password (HTTP Basic)'
              : 'invalid API key',
            { 'WWW-Authenticate': REALM },
          ),
        );
      if (!caller.admin) return next(new SpecError('FORBIDDEN', 'the queue board is for admin keys only'));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return next(
        new SpecError(
          'FORBIDDEN',
          'the queue board is read-only: retrying, cleaning, pausing, promoting or removing jobs there would bypass the hub; use the API (cancel, DELETE)',
        ),
      );
    }
    next();
  };
}

/** The board's router and the queues it reads (closed with it). */
export class QueueBoard {
  readonly router: Router;
  private readonly queues: Queue[];

  constructor(options: QueueBoardOptions) {
    const queue = (name: string) => {
      const q = new Queue(name, { connection: options.connection, prefix: options.prefix });
      q.on('error', () => undefined); // the API logs its own connection's errors
      return q;
    };
    const lanes = options.models.flatMap((model) => [
      { queue: queue(modelQueueName(model)), displayName: model, description: `jobs of ${model}` },
      {
        queue: queue(bulkQueueName(model)),
        displayName: `${model} (batches)`,
        description: `batch chunks of ${model} (each up to BATCH_CHUNK_SIZE items) and their batches`,
      },
    ]);
    lanes.push({ queue: queue(WEBHOOK_QUEUE), displayName: 'webhooks', description: 'webhook events to deliver' });
    this.queues = lanes.map((l) => l.queue);
    const adapters = lanes.map(({ queue: q, displayName, description }) => {
      const adapter = new BullMQAdapter(q, { readOnlyMode: true, allowRetries: false, displayName, description });
      adapter.setFormatter('data', (data: unknown) => elideForBoard(data));
      adapter.setFormatter('returnValue', (value: unknown) => elideForBoard(value));
      return adapter;
    });
    const server = new ExpressAdapter().setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({
      queues: adapters,
      serverAdapter: server,
      options: { uiConfig: { boardTitle: 'ModelHub queues', hideDocsLink: true } },
    });
    const board = server.getRouter() as express.Express;
    board.disable('x-powered-by');
    const router = Router();
    router.use(boardGuard(options));
    router.use(board);
    this.router = router;
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
