/**
 * The web console: static files from api/console at / (and /models/{name}, routed in the page),
 * and the compiled TypeScript SDK at /sdk/, which the console imports. No key is needed to load
 * the page; the page asks for one when the API answers 401.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Response } from 'express';
import { REPO_ROOT } from '../../shared/config.js';

/** Beside this module's folder: api/console from source, dist/api/console compiled (the build copies it). */
const CONSOLE_DIR = fileURLToPath(new URL('../console', import.meta.url));
/** The SDK is its own package, compiled into clients/typescript/lib (committed). */
const SDK_DIR = path.join(REPO_ROOT, 'clients', 'typescript', 'lib');

/** Same-origin only: no inline script or style, images from the page's own blobs and data URLs. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

function secure(res: Response): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
}

export function consoleRoutes(): Router {
  const router = Router();
  const page = (_req: express.Request, res: Response) => {
    secure(res);
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(path.join(CONSOLE_DIR, 'index.html'));
  };
  router.get('/', page);
  router.get('/models/:name', page);
  const assets = { index: false, fallthrough: true, maxAge: 0, setHeaders: secure } as const;
  router.use('/console', express.static(CONSOLE_DIR, assets));
  router.use('/sdk', express.static(SDK_DIR, assets));
  return router;
}
