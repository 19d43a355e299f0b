/**
 * JPEG-in-TIFF tiles as standalone JPEG files. A TIFF with compression 7 usually stores each tile
 * as an abbreviated stream (SOI, frame, scan, EOI) and the quantisation and Huffman tables once,
 * in JPEGTables (SOI, DQT, DHT, EOI). A complete file is the tables without their EOI followed by
 * the tile without its SOI. Tiles whose photometric interpretation is RGB hold RGB samples; a
 * JFIF decoder assumes YCbCr for three components unless an Adobe APP14 marker says
 * "no transform", so one is inserted after SOI.
 */

const SOI = 0xd8;
const EOI = 0xd9;

/** APP14 "Adobe", version 100, no flags, transform 0 (the components are RGB). */
const ADOBE_RGB = Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

function startsWithSoi(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0xff && b[1] === SOI;
}

function endsWithEoi(b: Buffer): boolean {
  return b.length >= 2 && b[b.length - 2] === 0xff && b[b.length - 1] === EOI;
}

/** A complete JPEG file from a stored tile and its level's tables; null when the bytes are not a JPEG stream. */
export function completeJpeg(tile: Buffer, tables: Buffer | null, rgb: boolean): Buffer | null {
  if (!startsWithSoi(tile)) return null;
  const parts: Buffer[] = [tile.subarray(0, 2)];
  if (rgb) parts.push(ADOBE_RGB);
  if (tables !== null && tables.length > 4) {
    if (!startsWithSoi(tables) || !endsWithEoi(tables)) return null;
    parts.push(tables.subarray(2, tables.length - 2));
  }
  parts.push(tile.subarray(2));
  return Buffer.concat(parts);
}
