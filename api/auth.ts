/**
 * API keys (MODELHUB_API_KEYS = "key:tenant,key:tenant:admin"). Every /v1 call needs
 * `Authorization: Bearer <key>`; the key's tenant scopes what the caller sees; `admin` keys also
 * see operator details (worker hosts, pids, load). Keys are at least MIN_API_KEY_LENGTH
 * characters and compared in constant time (over their SHA-256 digests, so length leaks nothing).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { SpecError } from '../shared/errors.js';

export const MIN_API_KEY_LENGTH = 16;

export interface KeyEntry {
  digest: Buffer;
  tenant: string;
  admin: boolean;
}

export interface Caller {
  tenant: string;
  admin: boolean;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function parseApiKeys(spec: string | undefined): KeyEntry[] {
  if (!spec || !spec.trim()) return [];
  return spec.split(',').map((entry) => {
    const parts = entry.trim().split(':');
    const admin = parts.length === 3 && parts[2] === 'admin';
    if (parts.length !== 2 && !admin)
      throw new Error(`MODELHUB_API_KEYS: "${entry.trim().slice(0, 4)}…" is not key:tenant or key:tenant:admin`);
    const key = parts[0].trim();
    const tenant = parts[1].trim();
    if (!key || !tenant)
      throw new Error(`MODELHUB_API_KEYS: "${entry.trim().slice(0, 4)}…" is not key:tenant or key:tenant:admin`);
    if (key.length < MIN_API_KEY_LENGTH)
      throw new Error(
        `MODELHUB_API_KEYS: the key of tenant "${tenant}" is shorter than ${MIN_API_KEY_LENGTH} characters`,
      );
    return { digest: digest(key), tenant, admin };
  });
}

export function callerOf(keys: KeyEntry[], presented: string): Caller | null {
  const d = digest(presented);
  let caller: Caller | null = null;
  // Every entry is compared, so the time taken does not say which (if any) matched.
  for (const k of keys) if (timingSafeEqual(k.digest, d)) caller = { tenant: k.tenant, admin: k.admin };
  return caller;
}

export function tenantOf(keys: KeyEntry[], presented: string): string | null {
  return callerOf(keys, presented)?.tenant ?? null;
}

/** Loopback addresses: an API listening only there is reachable from this machine alone. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function apiKeyAuth(keys: KeyEntry[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    // Open (no keys): one trusted operator's hub, who sees everything.
    if (keys.length === 0) {
      req.admin = true;
      return next();
    }
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m)
      return next(
        new SpecError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>', {
          'WWW-Authenticate': 'Bearer',
        }),
      );
    const caller = callerOf(keys, m[1]);
    if (!caller) return next(new SpecError('UNAUTHORIZED', 'invalid API key', { 'WWW-Authenticate': 'Bearer' }));
    req.tenant = caller.tenant;
    req.admin = caller.admin;
    next();
  };
}
