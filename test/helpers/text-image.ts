/**
 * Renders words with sharp (SVG <text>, DejaVu Sans) at known places and measures where each
 * word's ink really is: every word is also rendered alone, and its box is the bounding box of
 * the pixels that differ from the background. Boxes are [x1, y1, x2, y2], pixel edges.
 */
import sharp from 'sharp';

export interface Word {
  text: string;
  x: number;
  /** Baseline. */
  y: number;
  size: number;
  color?: string;
  /** Degrees, clockwise, around (x, y). */
  rotate?: number;
  weight?: 'normal' | 'bold';
}

export type PixelBox = [number, number, number, number];

function svg(width: number, height: number, words: readonly Word[], background: string): Buffer {
  const texts = words
    .map((w) => {
      const transform = w.rotate ? ` transform="rotate(${w.rotate} ${w.x} ${w.y})"` : '';
      return `<text x="${w.x}" y="${w.y}" font-family="DejaVu Sans" font-size="${w.size}" font-weight="${w.weight ?? 'normal'}" fill="${w.color ?? '#000000'}"${transform}>${w.text}</text>`;
    })
    .join('');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${background}"/>${texts}</svg>`,
  );
}

async function rasterize(
  width: number,
  height: number,
  words: readonly Word[],
  background: string,
): Promise<{ rgb: Buffer; png: Buffer }> {
  const png = await sharp(svg(width, height, words, background))
    .flatten({ background })
    .png()
    .toBuffer();
  const rgb = await sharp(png).removeAlpha().raw().toBuffer();
  return { rgb, png };
}

/** Bounding box of pixels differing from the background by more than `tolerance` in any channel. */
export function inkBox(
  rgb: Buffer,
  width: number,
  height: number,
  background: [number, number, number],
  tolerance = 8,
): PixelBox | null {
  let x1 = Infinity,
    y1 = Infinity,
    x2 = -Infinity,
    y2 = -Infinity;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (
        Math.abs(rgb[i] - background[0]) > tolerance ||
        Math.abs(rgb[i + 1] - background[1]) > tolerance ||
        Math.abs(rgb[i + 2] - background[2]) > tolerance
      ) {
        x1 = Math.min(x1, x);
        y1 = Math.min(y1, y);
        x2 = Math.max(x2, x + 1);
        y2 = Math.max(y2, y + 1);
      }
    }
  }
  return x2 < 0 ? null : [x1, y1, x2, y2];
}

export interface RenderedText {
  png: Buffer;
  rgb: Buffer;
  width: number;
  height: number;
  /** Ink box of each word, in order. */
  boxes: PixelBox[];
}

export async function renderWords(
  width: number,
  height: number,
  words: readonly Word[],
  background = '#ffffff',
): Promise<RenderedText> {
  const bg = [1, 3, 5].map((i) => parseInt(background.slice(i, i + 2), 16)) as [number, number, number];
  const boxes: PixelBox[] = [];
  for (const w of words) {
    const alone = await rasterize(width, height, [w], background);
    const box = inkBox(alone.rgb, width, height, bg, 4);
    if (!box) throw new Error(`word "${w.text}" rendered no ink`);
    boxes.push(box);
  }
  const { png, rgb } = await rasterize(width, height, words, background);
  return { png, rgb, width, height, boxes };
}

export function boxIou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const area = (r: readonly number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (iw * ih) / (area(a) + area(b) - iw * ih);
}
