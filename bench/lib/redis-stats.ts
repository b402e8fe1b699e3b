/** Redis work per job from INFO commandstats (calls and CPU µs spent in commands). */
import type { Redis } from 'ioredis';

export interface CommandStats {
  calls: number;
  usec: number;
  byCommand: Record<string, { calls: number; usec: number }>;
}

export async function commandStats(redis: Redis): Promise<CommandStats> {
  const text = await redis.info('commandstats');
  const byCommand: CommandStats['byCommand'] = {};
  let calls = 0;
  let usec = 0;
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (!m) continue;
    byCommand[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
    calls += Number(m[2]);
    usec += Number(m[3]);
  }
  return { calls, usec, byCommand };
}

/** The difference, minus the INFO call that read `after` itself. */
export function statsBetween(before: CommandStats, after: CommandStats): CommandStats {
  const byCommand: CommandStats['byCommand'] = {};
  for (const [k, v] of Object.entries(after.byCommand)) {
    const b = before.byCommand[k] ?? { calls: 0, usec: 0 };
    const calls = v.calls - b.calls - (k === 'info' ? 1 : 0);
    if (calls > 0) byCommand[k] = { calls, usec: v.usec - b.usec };
  }
  const calls = Object.values(byCommand).reduce((a, v) => a + v.calls, 0);
  const usec = Object.values(byCommand).reduce((a, v) => a + v.usec, 0);
  return { calls, usec, byCommand };
}
