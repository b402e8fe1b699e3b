/**
 * What the run did and saw, in order: each operation (with its answer) and each fault. A
 * violation prints the entries around it, so the run can be read and replayed with `--seed`.
 */

export interface Entry {
  /** ms since the run started. */
  t: number;
  kind: 'op' | 'fault' | 'note';
  /** e.g. "submit", "cancel", "worker-kill". */
  name: string;
  tenant?: string;
  /** Job or batch ids the entry is about. */
  ids: string[];
  detail: string;
}

export class History {
  readonly entries: Entry[] = [];
  readonly started = Date.now();
  readonly opCounts = new Map<string, number>();
  readonly faultCounts = new Map<string, number>();

  now(): number {
    return Date.now() - this.started;
  }

  add(kind: Entry['kind'], name: string, detail: string, ids: string[] = [], tenant?: string): Entry {
    const e: Entry = { t: this.now(), kind, name, ids, detail, ...(tenant ? { tenant } : {}) };
    this.entries.push(e);
    const counts = kind === 'op' ? this.opCounts : kind === 'fault' ? this.faultCounts : null;
    if (counts) counts.set(name, (counts.get(name) ?? 0) + 1);
    return e;
  }

  /**
   * The entries about `ids`, plus every fault, note and operation that named no job (a submit
   * answered 503) within `windowMs` of them (or of `at`).
   */
  around(ids: string[], at?: number, windowMs = 3000, max = 60): Entry[] {
    const idSet = new Set(ids);
    const mine = this.entries.filter((e) => e.ids.some((id) => idSet.has(id)));
    const times = mine.map((e) => e.t);
    if (at !== undefined) times.push(at);
    if (times.length === 0) return this.entries.slice(-max);
    const lo = Math.min(...times) - windowMs;
    const hi = Math.max(...times) + windowMs;
    const picked = this.entries.filter(
      (e) => e.ids.some((id) => idSet.has(id)) || ((e.kind !== 'op' || e.ids.length === 0) && e.t >= lo && e.t <= hi),
    );
    return picked.length > max ? [...picked.slice(0, max / 2), ...picked.slice(-max / 2)] : picked;
  }
}

export function formatEntry(e: Entry): string {
  const t = (e.t / 1000).toFixed(3).padStart(8);
  const who = e.tenant ? ` ${e.tenant}` : '';
  const ids = e.ids.length ? ` [${e.ids.join(' ')}]` : '';
  return `${t}s ${e.kind.padEnd(5)} ${e.name}${who}${ids} ${e.detail}`;
}
