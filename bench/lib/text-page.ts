/**
 * A page of text for the text-detection bench: lines of words at several sizes over the whole
 * page, as a scan or a screenshot of a document would have (what users of the text models
 * mostly send), rendered with sharp (SVG text, DejaVu Sans).
 */
import sharp from 'sharp';

export type PageFormat = 'png' | 'jpeg' | 'webp';

const WORDS = 'the quick brown fox jumps over a lazy dog while ModelHub serves pages of text at 1280 by 960'.split(' ');

export async function textPage(width: number, height: number, format: PageFormat = 'png'): Promise<Buffer> {
  const lines: string[] = [];
  let y = 40;
  for (let i = 0; y < height - 20; i++) {
    const size = 14 + (i % 4) * 4;
    const words = Array.from({ length: 6 + ((i * 5) % 9) }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]);
    const x = 30 + ((i * 37) % 120);
    lines.push(
      `<text x="${x}" y="${y}" font-family="DejaVu Sans" font-size="${size}" fill="#${i % 5 === 0 ? '333333' : '000000'}">${words.join(' ')} ${i + 1}</text>`,
    );
    y += size + 12;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#ffffff"/>${lines.join('')}</svg>`;
  const page = sharp(Buffer.from(svg)).flatten({ background: '#ffffff' });
  return (
    format === 'jpeg' ? page.jpeg({ quality: 90 }) : format === 'webp' ? page.webp({ quality: 90 }) : page.png()
  ).toBuffer();
}
