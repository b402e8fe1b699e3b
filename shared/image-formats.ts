/**
 * The image formats ModelHub decodes: an allow-list checked on the file's leading bytes before
 * any decoder sees it, in the API and again in the worker. Formats sharp could also read but
 * that are costly or risky to decode from untrusted input (SVG: a renderer; HEIF/AVIF; PDF)
 * are refused with 415, so a 200-byte file can never ask for seconds of rendering.
 */
import { SpecError } from './errors.js';

export const ALLOWED_IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const;
export type AllowedImageFormat = (typeof ALLOWED_IMAGE_FORMATS)[number];

const startsWith = (bytes: Buffer, sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
const ascii = (bytes: Buffer, from: number, to: number) => bytes.subarray(from, to).toString('latin1');

/** The allowed format the bytes are, or null. */
export function allowedFormatOf(bytes: Buffer): AllowedImageFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  return null;
}

/** Names a recognised but refused format (for the 415 message), or null for unrecognised bytes. */
export function refusedFormatOf(bytes: Buffer): string | null {
  const head = ascii(bytes, 0, 512)
    .replace(/^\uFEFF|^\xEF\xBB\xBF/, '')
    .trimStart();
  if (head.startsWith('<'))
    return /<svg[\s>]/i.test(ascii(bytes, 0, 4096)) || head.startsWith('<?xml') ? 'svg' : 'xml/html';
  if (ascii(bytes, 4, 8) === 'ftyp') return 'heif/avif';
  if (ascii(bytes, 0, 2) === 'BM') return 'bmp';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  if (ascii(bytes, 0, 4) === '8BPS') return 'psd';
  if (startsWith(bytes, [0xff, 0x0a]) || startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20]))
    return 'jpeg-xl';
  if (ascii(bytes, 0, 2) === 'P6' || ascii(bytes, 0, 2) === 'P5' || ascii(bytes, 0, 2) === 'PF') return 'pnm';
  return null;
}

/** The file's format if it is on the allow-list; a 415 for another image format, a 400 for anything else. */
export function requireAllowedFormat(bytes: Buffer): AllowedImageFormat {
  const format = allowedFormatOf(bytes);
  if (format) return format;
  const refused = refusedFormatOf(bytes);
  if (refused) {
    throw new SpecError(
      'UNSUPPORTED_IMAGE_FORMAT',
      `image format ${refused} is not accepted; send ${ALLOWED_IMAGE_FORMATS.join(', ')} (GIF and TIFF: first frame)`,
    );
  }
  throw new SpecError('INVALID_IMAGE', `image is not a decodable image file (${ALLOWED_IMAGE_FORMATS.join(', ')})`);
}
