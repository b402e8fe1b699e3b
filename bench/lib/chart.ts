/** Throughput and p95 latency against concurrency, one line per series: SVG, then PNG via sharp. */
import sharp from 'sharp';

export interface Series {
  name: string;
  /** concurrency → value */
  points: Map<number, number>;
}

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];

function panel(
  title: string,
  unit: string,
  series: Series[],
  xs: number[],
  x0: number,
  width: number,
  height: number,
  line?: { value: number; label: string },
): string {
  const top = 40;
  const left = x0 + 60;
  const plotW = width - 80;
  const plotH = height - 90;
  const values = series.flatMap((s) => [...s.points.values()]).filter(Number.isFinite);
  const max = Math.max(line?.value ?? 0, ...values) * 1.1 || 1;
  const xAt = (i: number) => left + (xs.length === 1 ? plotW / 2 : (i * plotW) / (xs.length - 1));
  const yAt = (v: number) => top + plotH - (v / max) * plotH;
  const out: string[] = [
    `<text x="${x0 + width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${title}</text>`,
  ];
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    out.push(
      `<text x="${left - 6}" y="${yAt(v) + 4}" text-anchor="end" font-size="11">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`,
    );
    out.push(`<line x1="${left}" y1="${yAt(v)}" x2="${left + plotW}" y2="${yAt(v)}" stroke="#eee"/>`);
  }
  xs.forEach((x, i) =>
    out.push(`<text x="${xAt(i)}" y="${top + plotH + 16}" text-anchor="middle" font-size="11">${x}</text>`),
  );
  out.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle" font-size="12">concurrent clients</text>`,
  );
  out.push(
    `<text x="${x0 + 14}" y="${top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 14} ${top + plotH / 2})">${unit}</text>`,
  );
  if (line) {
    out.push(
      `<line x1="${left}" y1="${yAt(line.value)}" x2="${left + plotW}" y2="${yAt(line.value)}" stroke="#000" stroke-dasharray="6 4"/>`,
    );
    out.push(
      `<text x="${left + plotW - 4}" y="${yAt(line.value) - 5}" text-anchor="end" font-size="11">${line.label}</text>`,
    );
  }
  series.forEach((s, si) => {
    const pts = xs
      .map((x, i) => [i, s.points.get(x)] as const)
      .filter(([, v]) => v !== undefined && Number.isFinite(v));
    const colour = COLOURS[si % COLOURS.length];
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([i, v]) => `${xAt(i)},${yAt(v!)}`).join(' ')}"/>`,
      );
    for (const [i, v] of pts) out.push(`<circle cx="${xAt(i)}" cy="${yAt(v!)}" r="3" fill="${colour}"/>`);
  });
  return out.join('\n');
}

export async function writeChart(
  file: string,
  title: string,
  throughput: Series[],
  p95: Series[],
  xs: number[],
  rawBest?: number,
): Promise<void> {
  const W = 1000;
  const H = 430;
  const legend = throughput
    .map(
      (s, i) =>
        `<rect x="${20 + i * 240}" y="${H + 2}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/><text x="${36 + i * 240}" y="${H + 12}" font-size="12">${s.name}</text>`,
    )
    .join('\n');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 44}" font-family="DejaVu Sans, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${W / 2}" y="${H + 36}" text-anchor="middle" font-size="11" fill="#555">${title}</text>
${panel('Throughput', 'jobs/s', throughput, xs, 0, W / 2, H, rawBest ? { value: rawBest, label: `raw onnxruntime, best batch: ${rawBest.toFixed(0)}/s` } : undefined)}
${panel('p95 latency', 'ms', p95, xs, W / 2, W / 2, H)}
${legend}
</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}
