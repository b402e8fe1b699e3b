import { describe, expect, it } from 'vitest';
import {
  NUMBERS_PER_CHUNK,
  float32ToJsonNumber,
  formatFloat32,
  parseVectors,
  vectorsToArrays,
  vectorsToString,
} from '../../worker/tasks/text/format-vectors.js';

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);
function floatFromBits(b: number): number {
  bits[0] = b >>> 0;
  return asFloat[0];
}

/** Reference: the first precision, counting up from 1, whose decimal reads back. */
function shortestBySearch(v: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(parseFloat(s)) === v) return s;
  }
  throw new Error(`no decimal reads back as ${v}`);
}

/** Significant digits of a decimal, trailing zeros of an integer like 120000 not counted. */
function significantDigits(s: string): number {
  return Math.abs(Number(s)).toExponential().replace(/e.*$/, '').replace('.', '').length;
}

function readsBackExactly(s: string, v: number): boolean {
  return Object.is(Math.fround(Number(s)), v);
}

describe('formatFloat32', () => {
  const edge: [string, number][] = [
    ['smallest subnormal', floatFromBits(0x00000001)],
    ['largest subnormal', floatFromBits(0x007fffff)],
    ['smallest normal', floatFromBits(0x00800000)],
    ['largest float32', floatFromBits(0x7f7fffff)],
    ['negative largest float32', floatFromBits(0xff7fffff)],
    ['one', 1],
    ['one plus ulp', floatFromBits(0x3f800001)],
    ['one minus ulp', floatFromBits(0x3f7fffff)],
    ['0.1f', Math.fround(0.1)],
    ['-1/3', Math.fround(-1 / 3)],
    ['2^24 + 2', 16777218],
    ['1e21 region', Math.fround(1e21)],
    ['1e-7 region', Math.fround(1e-7)],
    ['tanh saturation', Math.fround(0.99999994)],
  ];
  it.each(edge)('%s reads back exactly and is as short as any correctly rounded decimal', (_name, v) => {
    const s = formatFloat32(v);
    expect(readsBackExactly(s, v)).toBe(true);
    expect(significantDigits(s)).toBe(significantDigits(shortestBySearch(v)));
    // A valid JSON number, so clients can parse it with any JSON/number parser.
    expect(JSON.parse(s)).toBe(Number(s));
  });

  it('keeps the sign of zero', () => {
    expect(formatFloat32(0)).toBe('0');
    expect(formatFloat32(-0)).toBe('-0');
    expect(Object.is(Number(formatFloat32(-0)), -0)).toBe(true);
  });

  it('prints short values short', () => {
    expect(formatFloat32(0.5)).toBe('0.5');
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(-3)).toBe('-3');
    expect(formatFloat32(120000)).toBe('120000');
    expect(formatFloat32(floatFromBits(0x00000001))).toBe('1e-45');
  });

  it('names the non-finite values', () => {
    expect(formatFloat32(NaN)).toBe('NaN');
    expect(formatFloat32(Infinity)).toBe('Infinity');
    expect(formatFloat32(-Infinity)).toBe('-Infinity');
    expect(float32ToJsonNumber(NaN)).toBeNull();
  });

  it('round-trips 200k random bit patterns (all exponents, subnormals included) at the shortest length', () => {
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    for (let i = 0; i < 200_000; i++) {
      const v = floatFromBits(next());
      if (!Number.isFinite(v)) continue;
      const s = formatFloat32(v);
      if (!readsBackExactly(s, v) || significantDigits(s) !== significantDigits(shortestBySearch(v))) {
        throw new Error(`bits ${bits[0].toString(16)}: ${v} printed as ${s}`);
      }
    }
  });

  it('refuses a value that is not a float32 rather than printing it inexactly', () => {
    expect(() => formatFloat32(0.1)).toThrow(RangeError);
  });
});

describe('vectorsToString / vectorsToArrays', () => {
  it('separates numbers by commas and positions by semicolons, and parses back bit-exactly', async () => {
    const values = Float32Array.from([0.1, -2.5, 3e-40, 1, -0, 7]);
    const text = await vectorsToString(values, 3);
    expect(text.split(';')).toHaveLength(2);
    expect(text.split(';')[0].split(',')).toHaveLength(3);
    const back = parseVectors(text);
    expect(back.map((r) => Array.from(r))).toEqual([Array.from(values.subarray(0, 3)), Array.from(values.subarray(3))]);
    expect(Object.is(back[1][1], -0)).toBe(true);
  });

  it('gives the same numbers in the array form', async () => {
    const values = Float32Array.from({ length: 12 }, (_, i) => Math.fround(Math.sin(i) * 3));
    const text = await vectorsToString(values, 4);
    const arrays = await vectorsToArrays(values, 4);
    expect(arrays).toHaveLength(3);
    expect(arrays.map((r) => r.map((n) => formatFloat32(Math.fround(n!))).join(',')).join(';')).toBe(text);
    expect(JSON.stringify(arrays[0])).toBe(`[${text.split(';')[0]}]`);
  });

  it('refuses values that do not split into rows', async () => {
    await expect(vectorsToString(new Float32Array(5), 2)).rejects.toThrow(RangeError);
  });

  it('formats a 512 × 768 answer without holding the event loop', async () => {
    const width = 768;
    const values = Float32Array.from({ length: 512 * width }, (_, i) => Math.fround(Math.cos(i * 0.37) * 2));
    let ticks = 0;
    let longestGapMs = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
      ticks += 1;
    }, 1);
    const text = await vectorsToString(values, width);
    clearInterval(timer);
    expect(text.split(';')).toHaveLength(512);
    // The interval fires between chunks: many times, never after a long stall.
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(values.length / NUMBERS_PER_CHUNK) / 2);
    expect(longestGapMs).toBeLessThan(200);
    const back = parseVectors(text);
    for (let r = 0; r < 512; r += 97)
      expect(Array.from(back[r])).toEqual(Array.from(values.subarray(r * width, (r + 1) * width)));
  });
});
