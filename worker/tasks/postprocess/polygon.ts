/**
 * Plane geometry for region decoders (DBNet): convex hull, minimum-area rotated rectangle and
 * convex-polygon tests. Points are [x, y] in whatever pixel space the caller works in.
 */
import type { Point } from '../geometry.js';

export type { Point };

function cross(o: Point, a: Point, b: Point): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Andrew's monotone chain; returns the hull counter-clockwise (in y-down pixels: clockwise on screen), no repeats. */
export function convexHull(points: readonly Point[]): Point[] {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length <= 2) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

export interface RotatedRect {
  center: Point;
  /** Unit vector along the first side. */
  axis: Point;
  /** Side lengths along `axis` and along its perpendicular. */
  width: number;
  height: number;
}

/** Minimum-area enclosing rectangle of a convex hull (rotating calipers over the hull's edges). */
export function minAreaRect(hull: readonly Point[]): RotatedRect {
  if (hull.length === 0) return { center: [0, 0], axis: [1, 0], width: 0, height: 0 };
  let best: RotatedRect | null = null;
  let bestArea = Infinity;
  const edges = hull.length === 1 ? 1 : hull.length;
  for (let i = 0; i < edges; i++) {
    const a = hull[i];
    const b = hull[(i + 1) % hull.length];
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const u: Point = len > 0 ? [(b[0] - a[0]) / len, (b[1] - a[1]) / len] : [1, 0];
    const v: Point = [-u[1], u[0]];
    let minU = Infinity,
      maxU = -Infinity,
      minV = Infinity,
      maxV = -Infinity;
    for (const p of hull) {
      const pu = p[0] * u[0] + p[1] * u[1];
      const pv = p[0] * v[0] + p[1] * v[1];
      minU = Math.min(minU, pu);
      maxU = Math.max(maxU, pu);
      minV = Math.min(minV, pv);
      maxV = Math.max(maxV, pv);
    }
    const w = maxU - minU;
    const h = maxV - minV;
    // Ties (degenerate hulls) keep the first, axis-aligned-most candidate.
    if (w * h < bestArea - 1e-9 || best === null) {
      bestArea = w * h;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { center: [cu * u[0] + cv * v[0], cu * u[1] + cv * v[1]], axis: u, width: w, height: h };
    }
  }
  return best!;
}

/** The rectangle's four corners, in order around it. */
export function rectCorners(r: RotatedRect): Point[] {
  const [ux, uy] = r.axis;
  const vx = -uy;
  const vy = ux;
  const hw = r.width / 2;
  const hh = r.height / 2;
  const [cx, cy] = r.center;
  return [
    [cx - ux * hw - vx * hh, cy - uy * hw - vy * hh],
    [cx + ux * hw - vx * hh, cy + uy * hw - vy * hh],
    [cx + ux * hw + vx * hh, cy + uy * hw + vy * hh],
    [cx - ux * hw + vx * hh, cy - uy * hw + vy * hh],
  ];
}

/** Grows a rectangle by `distance` on every side (what a round-join polygon offset does to its enclosing rectangle). */
export function expandRect(r: RotatedRect, distance: number): RotatedRect {
  return { ...r, width: r.width + 2 * distance, height: r.height + 2 * distance };
}

/** Whether (x, y) lies inside a convex polygon given in either winding, boundary included. */
export function insideConvex(poly: readonly Point[], x: number, y: number, eps = 1e-9): boolean {
  let sign = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i];
    const b = poly[(i + 1) % poly.length];
    const c = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
    if (Math.abs(c) <= eps * Math.hypot(b[0] - a[0], b[1] - a[1])) continue;
    const s = Math.sign(c);
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}

/**
 * The cells of row `y` of a grid whose point (x + offset, y + offset) lies inside a convex
 * polygon (boundary included, within `eps`), as [first, last] x; null when none. The polygon's
 * span at that height comes from its edges' crossings: no per-cell test.
 */
export function convexRowSpan(
  poly: readonly Point[],
  y: number,
  width: number,
  offset = 0.5,
  eps = 1e-9,
): [number, number] | null {
  const yc = y + offset;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < poly.length; i++) {
    const [ax, ay] = poly[i];
    const [bx, by] = poly[(i + 1) % poly.length];
    if ((ay < yc - eps && by < yc - eps) || (ay > yc + eps && by > yc + eps)) continue;
    if (Math.abs(by - ay) <= eps) {
      // An edge along the row: both its ends are on the boundary.
      lo = Math.min(lo, ax, bx);
      hi = Math.max(hi, ax, bx);
      continue;
    }
    const t = Math.min(1, Math.max(0, (yc - ay) / (by - ay)));
    const x = ax + t * (bx - ax);
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  if (!(lo <= hi)) return null;
  const first = Math.max(0, Math.ceil(lo - eps - offset));
  const last = Math.min(width - 1, Math.floor(hi + eps - offset));
  return first <= last ? [first, last] : null;
}

/** Calls `fn(y, first, last)` for each row of a width × height grid with cells inside the convex polygon (see convexRowSpan). */
export function forEachRowSpan(
  poly: readonly Point[],
  width: number,
  height: number,
  fn: (y: number, first: number, last: number) => void,
  offset = 0.5,
  eps = 1e-9,
): void {
  if (poly.length < 3) return;
  let minY = Infinity;
  let maxY = -Infinity;
  for (const p of poly) {
    minY = Math.min(minY, p[1]);
    maxY = Math.max(maxY, p[1]);
  }
  const y0 = Math.max(0, Math.floor(minY - offset));
  const y1 = Math.min(height - 1, Math.ceil(maxY - offset));
  for (let y = y0; y <= y1; y++) {
    const span = convexRowSpan(poly, y, width, offset, eps);
    if (span) fn(y, span[0], span[1]);
  }
}

/**
 * Rasterizes a convex polygon: cell (x, y) is set when the point (x + offset, y + offset) is inside.
 * Returns a width × height row-major 0/1 mask.
 */
export function fillConvex(poly: readonly Point[], width: number, height: number, offset = 0.5): Uint8Array {
  const out = new Uint8Array(width * height);
  forEachRowSpan(poly, width, height, (y, first, last) => out.fill(1, y * width + first, y * width + last + 1), offset);
  return out;
}
