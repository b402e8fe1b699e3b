/** Top self-time functions of a V8 .cpuprofile (node --cpu-prof), for the report. */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export function topSelfTime(file: string, n = 12): { fn: string; pct: number }[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const counts = new Map<string, number>();
  for (const id of p.samples) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules\/)?/, '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = p.samples.length || 1;
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, c]) => ({ fn, pct: (100 * c) / total }));
}
