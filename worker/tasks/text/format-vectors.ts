/**
 * Vectors as the spec prints them: float32 values as the shortest decimals that read back as the
 * same float32, numbers within a position separated by commas, positions by semicolons.
 * A 512 × 768 answer is ~400k numbers (~0.3 s of formatting), so the work is cut into chunks
 * with a turn of the event loop between them: the worker keeps answering health checks, BullMQ
 * lock renewals and the batcher's timers meanwhile.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Numbers formatted between two turns of the event loop (~5 ms of work). */
export const NUMBERS_PER_CHUNK = 8192;

function readsBack(text: string, value: number): boolean {
  return Math.fround(parseFloat(text)) === value;
}

/**
 * The shortest decimal that reads back (parseFloat, then Math.fround) as exactly `value`, a
 * float32. 9 significant digits always suffice for float32; most values need 7 or 8, so the search
 * starts at 8 and walks down while the shorter form still reads back. -0 stays "-0"; NaN and the
 * infinities print as JavaScript names them ("NaN", "Infinity", "-Infinity").
 */
export function formatFloat32(value: number): string {
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  if (!Number.isFinite(value)) return String(value);
  let best = value.toPrecision(8);
  if (!readsBack(best, value)) {
    best = value.toPrecision(9);
    if (!readsBack(best, value)) throw new RangeError(`${value} is not a float32 value`);
  } else {
    for (let p = 7; p >= 1; p--) {
      const shorter = value.toPrecision(p);
      if (!readsBack(shorter, value)) break;
      best = shorter;
    }
  }
  // toPrecision writes "1.2e+5" where JavaScript (and JSON) would write 120000: same number, usual form.
  return best.includes('e') ? String(Number(best)) : best;
}

/** The number a client gets in the array form: the same shortest decimal, as a JSON number. */
export function float32ToJsonNumber(value: number): number | null {
  // JSON has no NaN or Infinity; JSON.stringify would write null anyway, this says so explicitly.
  if (!Number.isFinite(value)) return null;
  return Number(formatFloat32(value));
}

/** Formats `values` in order, yielding to the event loop every NUMBERS_PER_CHUNK numbers. */
async function mapChunked<T>(values: Float32Array, format: (v: number) => T): Promise<T[]> {
  const out: T[] = new Array(values.length);
  for (let start = 0; start < values.length; start += NUMBERS_PER_CHUNK) {
    if (start > 0) await nextTurn();
    const end = Math.min(values.length, start + NUMBERS_PER_CHUNK);
    for (let i = start; i < end; i++) out[i] = format(values[i]);
  }
  return out;
}

/** `rows` × `width` values (row-major) → "a,b,c;d,e,f". One row gives "a,b,c". */
export async function vectorsToString(values: Float32Array, width: number): Promise<string> {
  checkShape(values, width);
  const texts = await mapChunked(values, formatFloat32);
  const rows: string[] = [];
  for (let r = 0; r < values.length / width; r++) {
    rows.push(texts.slice(r * width, (r + 1) * width).join(','));
    if (r % 64 === 63) await nextTurn();
  }
  return rows.join(';');
}

/** `rows` × `width` values (row-major) → number[][] (one row per position). */
export async function vectorsToArrays(values: Float32Array, width: number): Promise<(number | null)[][]> {
  checkShape(values, width);
  const numbers = await mapChunked(values, float32ToJsonNumber);
  const rows: (number | null)[][] = [];
  for (let r = 0; r < values.length / width; r++) rows.push(numbers.slice(r * width, (r + 1) * width));
  return rows;
}

/** Parses the spec's string form back into float32 rows (for tests and clients written in TypeScript). */
export function parseVectors(text: string): Float32Array[] {
  return text.split(';').map((row) => Float32Array.from(row.split(','), (t) => Number(t)));
}

function checkShape(values: Float32Array, width: number): void {
  if (!Number.isInteger(width) || width < 1 || values.length % width !== 0) {
    throw new RangeError(`cannot split ${values.length} values into rows of ${width}`);
  }
}
