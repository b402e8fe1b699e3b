/**
 * How many pixels an input's image has, read from the first bytes of its base64 (the header),
 * before anything decodes it: the intake holds very large images behind a gate of their own.
 */
import { readImageHeaderOfBase64 } from '../shared/image-header.js';

/** The image's width × height by its header, or null (no image, or a header not in the first bytes). */
export function imagePixelsOf(input: Record<string, unknown>): number | null {
  const image = input.image;
  if (typeof image !== 'string') return null;
  try {
    const { width, height } = readImageHeaderOfBase64(image);
    return width && height ? width * height : null;
  } catch {
    return null;
  }
}
