/** Test images rendered with sharp. */
import sharp from 'sharp';

export async function solidImage(
  width: number,
  height: number,
  rgb: [number, number, number],
  format: 'png' | 'jpeg' = 'png',
): Promise<Buffer> {
  const img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 100 }).toBuffer();
}

const escapeXml = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);

/** One line of dark text on white, as PNG. */
export async function textLineImage(
  text: string,
  options: { width?: number; height?: number; fontSize?: number } = {},
): Promise<Buffer> {
  const { width = 360, height = 56, fontSize = 32 } = options;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/><text x="8" y="${Math.round(height * 0.72)}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="black">${escapeXml(text)}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export const b64 = (buf: Buffer) => buf.toString('base64');
