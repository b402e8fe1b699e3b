/**
 * A crafted JPEG (issue 28): SOI, APP0, then `fillerBytes` of minimal 4-byte comment segments
 * (FF FE 00 02) and only then a baseline frame header for `width` × `height`, and EOI. A header
 * reader that walks segments to the frame header spends ~110 ms per MiB of filler.
 */
export function craftedJpeg(fillerBytes: number, width = 64, height = 64): Buffer {
  const app0 = Buffer.from([
    0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  ]);
  const filler = Buffer.alloc(Math.floor(fillerBytes / 4) * 4);
  for (let i = 0; i < filler.length; i += 4) filler.set([0xff, 0xfe, 0x00, 0x02], i);
  const sof = Buffer.from([
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x11,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
  ]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, filler, sof, Buffer.from([0xff, 0xd9])]);
}
