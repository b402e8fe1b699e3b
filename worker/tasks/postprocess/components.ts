/**
 * 8-connected components of a thresholded map, found in one pass over the map's rows as runs
 * (horizontal stretches above the threshold) joined by union-find: typed arrays only, no
 * per-pixel objects, stack or closures. A component is returned as its rows' extreme pixels,
 * which is all its convex hull (hence its rotated rectangle) needs.
 */
import type { Point } from '../geometry.js';

export interface Component {
  /** Leftmost and rightmost pixel center of each of its rows (one point where they coincide). */
  points: Point[];
  /** Bounding box in pixels, inclusive. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Growable Int32Array columns of the run table. */
class Runs {
  length = 0;
  row = new Int32Array(1024);
  start = new Int32Array(1024);
  end = new Int32Array(1024);
  parent = new Int32Array(1024);

  push(row: number, start: number, end: number): number {
    if (this.length === this.row.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.row = grow(this.row);
      this.start = grow(this.start);
      this.end = grow(this.end);
      this.parent = grow(this.parent);
    }
    const i = this.length++;
    this.row[i] = row;
    this.start[i] = start;
    this.end[i] = end;
    this.parent[i] = i;
    return i;
  }

  find(i: number): number {
    const parent = this.parent;
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  }

  /** The smaller index stays the root: a component's root is its first run in scan order. */
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra < rb) this.parent[rb] = ra;
    else if (rb < ra) this.parent[ra] = rb;
  }
}

/**
 * Components of `map > thresh` (8-connected), in the scan order of their first pixel, at most
 * `limit` of them. `stride` is the map's row length when only its first `width` columns count.
 */
export function thresholdComponents(
  map: ArrayLike<number>,
  width: number,
  height: number,
  thresh: number,
  limit = Infinity,
  stride = width,
): Component[] {
  const runs = new Runs();
  let prevFirst = 0;
  let prevEnd = 0;
  for (let y = 0; y < height; y++) {
    const rowFirst = runs.length;
    const base = y * stride;
    let j = prevFirst;
    for (let x = 0; x < width; x++) {
      if (!(map[base + x] > thresh)) continue;
      const start = x;
      while (x + 1 < width && map[base + x + 1] > thresh) x++;
      const r = runs.push(y, start, x);
      // Runs of the row above touching this one, diagonals included (8-connectivity).
      while (j < prevEnd && runs.end[j] < start - 1) j++;
      for (let k = j; k < prevEnd && runs.start[k] <= x + 1; k++) runs.union(r, k);
    }
    prevFirst = rowFirst;
    prevEnd = runs.length;
  }
  // Number components by their root (first run), which scan order reaches first.
  const n = runs.length;
  const compOf = new Int32Array(n);
  let count = 0;
  for (let r = 0; r < n; r++) {
    const root = runs.find(r);
    compOf[r] = root === r ? count++ : compOf[root];
  }
  const kept = Math.min(count, limit);
  const components: Component[] = [];
  for (let c = 0; c < kept; c++) components.push({ points: [], x0: width, y0: height, x1: -1, y1: -1 });
  // Runs come row by row: per component, the current row's extremes are flushed when its row changes.
  const curRow = new Int32Array(kept).fill(-1);
  const rowMin = new Int32Array(kept);
  const rowMax = new Int32Array(kept);
  const flush = (c: number) => {
    const y = curRow[c] + 0.5;
    const pts = components[c].points;
    pts.push([rowMin[c] + 0.5, y]);
    if (rowMax[c] !== rowMin[c]) pts.push([rowMax[c] + 0.5, y]);
  };
  for (let r = 0; r < n; r++) {
    const c = compOf[r];
    if (c >= kept) continue;
    const y = runs.row[r];
    const s = runs.start[r];
    const e = runs.end[r];
    if (curRow[c] !== y) {
      if (curRow[c] >= 0) flush(c);
      curRow[c] = y;
      rowMin[c] = s;
      rowMax[c] = e;
    } else {
      if (s < rowMin[c]) rowMin[c] = s;
      if (e > rowMax[c]) rowMax[c] = e;
    }
    const comp = components[c];
    if (s < comp.x0) comp.x0 = s;
    if (e > comp.x1) comp.x1 = e;
    if (y < comp.y0) comp.y0 = y;
    comp.y1 = y;
  }
  for (let c = 0; c < kept; c++) if (curRow[c] >= 0) flush(c);
  return components;
}
