/**
 * An image's size from its header, read from bounded windows of the file. `image-size` walks a
 * JPEG segment by segment until the frame header: a crafted file of 4-byte segments took ~110 ms
 * per MiB on the thread that ran it, with the frame header at the very end. Here only the first
 * IMAGE_HEADER_BYTES are scanned, in the API and in the worker, so the cost is bounded whatever
 * the file; the API refuses an image whose size is not found there (415, 1007).
 *
 * TIFF is the exception to "the first bytes": its header points at the first directory (IFD),
 * which many writers (libtiff, so sharp) put after the pixel data. Its window is the 8- or
 * 16-byte header plus IMAGE_HEADER_BYTES from the directory's offset, re-pointed to follow the
 * header, so the directory walk is bounded too.
 */
import { imageSize } from 'image-size';

/** How much of a file the header read looks at: every real header but a JPEG's behind >64 KiB of metadata. */
export const IMAGE_HEADER_BYTES = 64 * 1024;

export type HeaderSize = ReturnType<typeof imageSize>;

interface TiffLayout {
  littleEndian: boolean;
  headerBytes: number;
  ifdOffset: number;
}

function tiffLayout(head: Uint8Array): TiffLayout | null {
  if (head.length < 16) return null;
  const ii = head[0] === 0x49 && head[1] === 0x49;
  const mm = head[0] === 0x4d && head[1] === 0x4d;
  if (!ii && !mm) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = view.getUint16(2, ii);
  if (version === 42) return { littleEndian: ii, headerBytes: 8, ifdOffset: view.getUint32(4, ii) };
  if (version === 43) return { littleEndian: ii, headerBytes: 16, ifdOffset: Number(view.getBigUint64(8, ii)) };
  return null;
}

/** The TIFF header followed by a bounded window of its first directory, re-pointed to offset `headerBytes`. */
function tiffWindow(header: Uint8Array, layout: TiffLayout, directory: Uint8Array): Uint8Array {
  const out = new Uint8Array(layout.headerBytes + directory.length);
  out.set(header.subarray(0, layout.headerBytes));
  out.set(directory, layout.headerBytes);
  const view = new DataView(out.buffer);
  if (layout.headerBytes === 8) view.setUint32(4, 8, layout.littleEndian);
  else view.setBigUint64(8, 16n, layout.littleEndian);
  return out;
}

/** The header's size fields from bounded windows of the file; throws when they are not found there. */
export function readImageHeader(bytes: Uint8Array): HeaderSize {
  const layout = tiffLayout(bytes);
  if (layout && layout.ifdOffset >= layout.headerBytes && layout.ifdOffset < bytes.length)
    return imageSize(
      tiffWindow(bytes, layout, bytes.subarray(layout.ifdOffset, layout.ifdOffset + IMAGE_HEADER_BYTES)),
    );
  return imageSize(bytes.subarray(0, IMAGE_HEADER_BYTES));
}

/** The same from base64 text, decoding only the windows read (the worker peeks before decoding). */
export function readImageHeaderOfBase64(base64: string): HeaderSize {
  const chars = (bytes: number) => Math.ceil(bytes / 3) * 4;
  const head = Buffer.from(base64.slice(0, chars(IMAGE_HEADER_BYTES)), 'base64');
  const layout = tiffLayout(head);
  if (layout && layout.ifdOffset >= layout.headerBytes && layout.ifdOffset >= head.length) {
    // Whole base64 quanta around the directory: 4 characters per 3 bytes.
    const from = Math.floor(layout.ifdOffset / 3);
    const window = Buffer.from(base64.slice(from * 4, from * 4 + chars(IMAGE_HEADER_BYTES + 3)), 'base64');
    const skip = layout.ifdOffset - from * 3;
    return imageSize(tiffWindow(head, layout, window.subarray(skip, skip + IMAGE_HEADER_BYTES)));
  }
  return readImageHeader(head);
}
