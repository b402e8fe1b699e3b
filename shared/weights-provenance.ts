/**
 * Where a model's weights come from, as every answer names it: the served file's sha256 and
 * - `verified`: the digest is one the manifest records for this model (a shipped or fetched file);
 * - `unverified`: real weights whose digest the manifest does not record (a user's own export, a
 *   re-saved copy): still served, but nobody vouched for these bytes;
 * - `test`: a generated stand-in with the right signature and meaningless answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sha256File } from './file-hash.js';
import type { ModelEntry } from './manifest.js';

export type Verification = 'verified' | 'unverified' | 'test';

export interface WeightsProvenance {
  file: string;
  sha256: string;
  verification: Verification;
}

/** Every sha256 the manifest records for this model's real weights (lower case). */
export function recordedDigests(entry: ModelEntry): Set<string> {
  const { model } = entry.manifest;
  return new Set(
    [model.sha256, ...(model.files ?? []).map((f) => f.sha256)]
      .filter((d): d is string => Boolean(d))
      .map((d) => d.toLowerCase()),
  );
}

export function verificationOf(entry: ModelEntry, sha256: string): Verification {
  if (entry.weights === 'test') return 'test';
  return recordedDigests(entry).has(sha256.toLowerCase()) ? 'verified' : 'unverified';
}

const cache = new Map<string, { key: string; sha256: Promise<string> }>();

/** The provenance of the file an entry resolved to (hashed once per file version), or null when unavailable. */
export async function provenanceOf(entry: ModelEntry): Promise<WeightsProvenance | null> {
  const file = entry.modelPath;
  if (!file) return null;
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch {
    return null;
  }
  const key = `${stat.size}:${stat.mtimeMs}`;
  let hit = cache.get(file);
  if (hit?.key !== key) {
    hit = { key, sha256: sha256File(file) };
    hit.sha256.catch(() => cache.delete(file));
    cache.set(file, hit);
  }
  const sha256 = await hit.sha256;
  return { file: path.basename(file), sha256, verification: verificationOf(entry, sha256) };
}
