/**
 * What a hostile tenant sends (issue #11), as request bodies: shared by the hostile-tenant
 * test and the bench's attack phase, so both measure the same thing.
 */
import sharp from 'sharp';

/** A 4000×4000 SVG with a wide blur: seconds of rendering if it ever reached a decoder. */
export const SVG_BOMB = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><filter id="f"><feGaussianBlur stdDeviation="300"/></filter><rect width="4000" height="4000" filter="url(#f)"/></svg>',
);

/** A flat 3000×3000 PNG, base64 (~30 KB): 9 M pixels of segmentation output. */
export async function hugeFlatImage(): Promise<string> {
  return (
    await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#808080' } })
      .png()
      .toBuffer()
  ).toString('base64');
}

/** A 25 MB job body whose image is not an image (fits the default body limit). */
export const bigBody = (): string => `{"input":{"image":"${'A'.repeat(25 * 1024 * 1024)}"}}`;

/** A large text input (a flood of these fills Redis without a per-tenant quota). */
export const LARGE_TEXT = 'x'.repeat(100_000);
