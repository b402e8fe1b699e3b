/**
 * API keys (MODELHUB_API_KEYS = "key:tenant,key:tenant"). Every /v1 call needs
 * `Authorization: Bearer <key>`; the key's tenant scopes what the caller sees. Keys are compared
 * in constant time (over their SHA-256 digests, so length leaks nothing either).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { SpecError } from '../shared/errors.js';

interface KeyEntry {
  digest: Buffer;
  tenant: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function parseApiKeys(spec: string | undefined): KeyEntry[] {
  if (!spec || !spec.trim()) return [];
  return spec.split(',').map((pair) => {
    const i = pair.lastIndexOf(':');
    const key = pair.slice(0, i).trim();
    const tenant = pair.slice(i + 1).trim();
    if (i <= 0 || !key || !tenant) throw new Error(`MODELHUB_API_KEYS: "${pair.trim().slice(0, 4)}…" is not a key:tenant pair`);
    return { digest: digest(key), tenant };
  });
}

export function tenantOf(keys: KeyEntry[], presented: string): string | null {
  const d = digest(presented);
  let tenant: string | null = null;
  // Every entry is compared, so the time taken does not say which (if any) matched.
  for (const k of keys) if (timingSafeEqual(k.digest, d)) tenant = k.tenant;
  return tenant;
}

export function apiKeyAuth(keys: KeyEntry[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (keys.length === 0) return next();
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return next(new SpecError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>', { 'WWW-Authenticate': 'Bearer' }));
    const tenant = tenantOf(keys, m[1]);
    if (!tenant) return next(new SpecError('UNAUTHORIZED', 'invalid API key', { 'WWW-Authenticate': 'Bearer' }));
    req.tenant = tenant;
    next();
  };
}
