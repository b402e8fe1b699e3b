/**
 * This release's version, written in one place: package.json's `version`. The API's document
 * (/openapi.json), the workers' heartbeat (GET /v1/workers) and the webhook client's user agent
 * read it from here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from './config.js';

export const VERSION = z
  .object({ version: z.string().min(1) })
  .parse(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'))).version;
