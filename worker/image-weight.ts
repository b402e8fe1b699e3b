/**
 * How many pixels an input's image has, read from the first bytes of its base64 (the header),
 * before anything decodes it: the intake holds very large images behind a gate of their own.
 */
import { imageSize } from 'image-size';

/** Base64 characters peeked at: 48 KiB of file, enough for every header but a JPEG's after a large EXIF block. */
const HEAD_CHARS = 4 * 16 * 1024;

/** The image's width × height by its header, or null (no image, or a header not in the first bytes). */
export function imagePixelsOf(input: Record<string, unknown>): number | null {
  const image = input.image;
  if (typeof image !== 'string') return null;
  try {
    const { width, height } = imageSize(Buffer.from(image.slice(0, HEAD_CHARS), 'base64'));
    return width && height ? width * height : null;
  } catch {
    return null;
  }
}
