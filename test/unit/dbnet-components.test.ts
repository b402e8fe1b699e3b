/**
 * DBNet's one-pass region finding (postprocess/components.ts, polygon.ts row spans) against
 * the straightforward definitions: a flood fill per component and a per-pixel inside test.
 */
import { describe, expect, it } from 'vitest';
import { thresholdComponents } from '../../worker/tasks/postprocess/components.js';
import { convexRowSpan, fillConvex, insideConvex, type Point } from '../../worker/tasks/postprocess/polygon.js';

/** Seeded LCG: the same maps every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/** Reference: 8-connected flood fill from each unlabelled pixel in scan order; per row its extremes. */
function floodComponents(map: Float32Array, w: number, h: number, thresh: number): Point[][] {
  const label = new Int32Array(w * h);
  const out: Point[][] = [];
  for (let start = 0; start < w * h; start++) {
    if (label[start] !== 0 || !(map[start] > thresh)) continue;
    label[start] = out.length + 1;
    const stack = [start];
    const rows = new Map<number, [number, number]>();
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % w;
      const y = (p - x) / w;
      const r = rows.get(y);
      rows.set(y, r ? [Math.min(r[0], x), Math.max(r[1], x)] : [x, x]);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const q = ny * w + nx;
          if (label[q] === 0 && map[q] > thresh) {
            label[q] = out.length + 1;
            stack.push(q);
          }
        }
    }
    const pts: Point[] = [];
    for (const y of [...rows.keys()].sort((a, b) => a - b)) {
      const [x0, x1] = rows.get(y)!;
      pts.push([x0 + 0.5, y + 0.5]);
      if (x1 !== x0) pts.push([x1 + 0.5, y + 0.5]);
    }
    out.push(pts);
  }
  return out;
}

describe('threshold components in one pass', () => {
  it('finds the components a flood fill finds, in the same order, with the same row extremes', () => {
    const rnd = random(7);
    for (const [w, h, density] of [
      [40, 30, 0.3],
      [64, 48, 0.5],
      [33, 17, 0.6],
      [1, 20, 0.5],
      [20, 1, 0.5],
    ]) {
      const map = Float32Array.from({ length: w * h }, () => (rnd() < density ? 0.5 + rnd() / 2 : rnd() * 0.3));
      const expected = floodComponents(map, w, h, 0.3);
      const got = thresholdComponents(map, w, h, 0.3);
      expect(got.map((c) => c.points)).toEqual(expected);
      for (const c of got) {
        expect(c.x0).toBe(Math.min(...c.points.map((p) => p[0] - 0.5)));
        expect(c.x1).toBe(Math.max(...c.points.map((p) => p[0] - 0.5)));
        expect(c.y0).toBe(c.points[0][1] - 0.5);
        expect(c.y1).toBe(c.points[c.points.length - 1][1] - 0.5);
      }
    }
  });

  it('joins diagonal neighbours, keeps the first `limit` components and reads only `width` of each `stride`', () => {
    // Two diagonal chains and a lone pixel; column 3 of each row (past width 3) would join everything.
    const rows = ['1001', '0101', '0011', '1001'];
    const map = Float32Array.from(rows.join(''), (ch) => Number(ch));
    const all = thresholdComponents(map, 3, 4, 0.5, Infinity, 4);
    expect(all.map((c) => c.points)).toEqual([
      [
        [0.5, 0.5],
        [1.5, 1.5],
        [2.5, 2.5],
      ],
      [[0.5, 3.5]],
    ]);
    expect(thresholdComponents(map, 3, 4, 0.5, 1, 4)).toHaveLength(1);
    expect(thresholdComponents(map, 4, 4, 0.5)).toHaveLength(2);
  });
});

describe('convex row spans', () => {
  it('selects exactly the cells whose centers a per-pixel inside test accepts', () => {
    const rnd = random(11);
    for (let n = 0; n < 200; n++) {
      const cx = 5 + rnd() * 20;
      const cy = 5 + rnd() * 20;
      const a = rnd() * Math.PI;
      const [hw, hh] = [rnd() * 10, rnd() * 6];
      const [ux, uy, vx, vy] = [Math.cos(a), Math.sin(a), -Math.sin(a), Math.cos(a)];
      const quad: Point[] = [
        [cx - ux * hw - vx * hh, cy - uy * hw - vy * hh],
        [cx + ux * hw - vx * hh, cy + uy * hw - vy * hh],
        [cx + ux * hw + vx * hh, cy + uy * hw + vy * hh],
        [cx - ux * hw + vx * hh, cy - uy * hw + vy * hh],
      ];
      for (let y = 0; y < 30; y++) {
        const expected: number[] = [];
        for (let x = 0; x < 30; x++) if (insideConvex(quad, x + 0.5, y + 0.5)) expected.push(x);
        const span = convexRowSpan(quad, y, 30);
        const got = span ? Array.from({ length: span[1] - span[0] + 1 }, (_, i) => span[0] + i) : [];
        expect(got).toEqual(expected);
      }
    }
  });

  it('includes cells whose centers lie on the boundary', () => {
    const square: Point[] = [
      [1.5, 1.5],
      [3.5, 1.5],
      [3.5, 3.5],
      [1.5, 3.5],
    ];
    const m = fillConvex(square, 6, 6);
    expect(Array.from(m).reduce((a, b) => a + b, 0)).toBe(9);
  });
});
