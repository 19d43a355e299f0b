/**
 * Minimal TIFF / BigTIFF directory reader.
 *
 * Why our own: sharp's metadata does not expose ImageDescription (where Aperio keeps MPP and
 * magnification), tile geometry per page, NDPI's private tags or the compression of each page, and
 * we need exact, bounded reads with clear errors on damaged files. This reads only the IFDs and the
 * tag values we ask for (a few KB), never pixel data.
 *
 * Layout (TIFF 6.0 and BigTIFF): header -> first IFD offset; each IFD = entry count, entries of
 * (tag, type, count, value-or-offset), next IFD offset. Classic TIFF uses 2-byte counts, 12-byte
 * entries and 4-byte offsets; BigTIFF 8-byte counts, 20-byte entries and 8-byte offsets.
 */
import { open, type FileHandle } from 'node:fs/promises';

export const TiffTag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  PhotometricInterpretation: 262,
  ImageDescription: 270,
  /** Strip-organised images: where each strip is, how many rows it holds, how many bytes it takes. */
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  ResolutionUnit: 296,
  PlanarConfiguration: 284,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  JPEGTables: 347,
  /** Hamamatsu NDPI marks its files with this private tag (the file format version). */
  NdpiFormatFlag: 65420,
} as const;

/** Compression values that libvips/libtiff as shipped with sharp cannot decode but OpenSlide can. */
export const COMPRESSION_NEEDS_OPENSLIDE: ReadonlyMap<number, string> = new Map([
  [33003, 'Aperio JPEG 2000 (YCbCr)'],
  [33005, 'Aperio JPEG 2000 (RGB)'],
  [34712, 'JPEG 2000'],
  [50000, 'ZSTD'],
]);

export type TagValue = number[] | string;

export interface TiffDirectory {
  /** Index of this IFD in the main chain (page number as sharp counts it), or -1 for a SubIFD. */
  readonly page: number;
  /** For a SubIFD: its index under the parent page, else -1. */
  readonly subifd: number;
  readonly offset: number;
  readonly tags: ReadonlyMap<number, TagValue>;
  readonly width: number;
  readonly height: number;
  readonly tiled: boolean;
  readonly tileWidth: number | null;
  readonly tileHeight: number | null;
  readonly compression: number;
  readonly description: string;
  readonly subIfds: readonly TiffDirectory[];
}

export interface TiffFile {
  readonly bigTiff: boolean;
  readonly littleEndian: boolean;
  readonly fileSize: number;
  readonly pages: readonly TiffDirectory[];
}

/** Thrown for anything structurally wrong; the caller turns it into a CorruptSlideError. */
export class TiffStructureError extends Error {}

const TYPE_SIZE: Record<number, number> = {
  1: 1, // BYTE
  2: 1, // ASCII
  3: 2, // SHORT
  4: 4, // LONG
  5: 8, // RATIONAL
  6: 1, // SBYTE
  7: 1, // UNDEFINED
  8: 2, // SSHORT
  9: 4, // SLONG
  10: 8, // SRATIONAL
  11: 4, // FLOAT
  12: 8, // DOUBLE
  13: 4, // IFD
  16: 8, // LONG8
  17: 8, // SLONG8
  18: 8, // IFD8
};

/** Tags whose values we decode; others are skipped so a huge private blob costs nothing. */
const WANTED = new Set<number>(Object.values(TiffTag));

const MAX_PAGES = 4096;
const MAX_ENTRIES = 4096;
const MAX_STRING = 16 * 1024 * 1024;
/** Beyond this a dimension is not a scan but a damaged or hostile header (2^24 px = 16.7 M px per side). */
export const MAX_DIMENSION = 1 << 24;

export function isTiffMagic(head: Buffer): boolean {
  if (head.length < 4) return false;
  const ii = head[0] === 0x49 && head[1] === 0x49;
  const mm = head[0] === 0x4d && head[1] === 0x4d;
  if (!ii && !mm) return false;
  const version = ii ? head.readUInt16LE(2) : head.readUInt16BE(2);
  return version === 42 || version === 43;
}

class Reader {
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly le: boolean,
    readonly big: boolean,
  ) {}

  async bytes(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new TiffStructureError(
        `${what} at byte ${offset} (+${length}) lies beyond the end of the file (${this.size} bytes): the file is truncated or damaged`,
      );
    }
    const buf = Buffer.alloc(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, offset);
    if (bytesRead !== length) throw new TiffStructureError(`short read of ${what} at byte ${offset}`);
    return buf;
  }

  u16(b: Buffer, o: number): number {
    return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  u64(b: Buffer, o: number): number {
    const v = this.le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TiffStructureError(`64-bit value ${v} is too large`);
    return Number(v);
  }
  offset(b: Buffer, o: number): number {
    return this.big ? this.u64(b, o) : this.u32(b, o);
  }
}

async function readValue(r: Reader, type: number, count: number, inline: Buffer): Promise<TagValue> {
  const size = TYPE_SIZE[type];
  if (size === undefined) return [];
  const total = size * count;
  if (type === 2 && total > MAX_STRING) throw new TiffStructureError(`ASCII tag of ${total} bytes is implausibly large`);
  if (total > MAX_STRING) throw new TiffStructureError(`tag value of ${total} bytes is implausibly large`);
  const inlineCap = r.big ? 8 : 4;
  const buf = total <= inlineCap ? inline.subarray(0, total) : await r.bytes(r.offset(inline, 0), total, 'tag value');
  if (type === 2) {
    const nul = buf.indexOf(0);
    return buf.subarray(0, nul < 0 ? buf.length : nul).toString('latin1');
  }
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * size;
    switch (type) {
      case 1:
      case 6:
      case 7:
        out.push(buf[o] ?? 0);
        break;
      case 3:
      case 8:
        out.push(r.u16(buf, o));
        break;
      case 4:
      case 9:
      case 13:
        out.push(r.u32(buf, o));
        break;
      case 5:
      case 10: {
        const den = r.u32(buf, o + 4);
        out.push(den === 0 ? 0 : r.u32(buf, o) / den);
        break;
      }
      case 11:
        out.push(r.le ? buf.readFloatLE(o) : buf.readFloatBE(o));
        break;
      case 12:
        out.push(r.le ? buf.readDoubleLE(o) : buf.readDoubleBE(o));
        break;
      default:
        out.push(r.u64(buf, o));
    }
  }
  return out;
}

function num(tags: Map<number, TagValue>, tag: number): number | undefined {
  const v = tags.get(tag);
  return Array.isArray(v) ? v[0] : undefined;
}

async function readIfd(r: Reader, offset: number, page: number, subifd: number, depth: number): Promise<{ dir: TiffDirectory; next: number }> {
  const countBytes = r.big ? 8 : 2;
  const entrySize = r.big ? 20 : 12;
  const head = await r.bytes(offset, countBytes, `image directory ${page >= 0 ? page : `sub-${subifd}`}`);
  const count = r.big ? r.u64(head, 0) : r.u16(head, 0);
  if (count === 0 || count > MAX_ENTRIES) throw new TiffStructureError(`image directory at byte ${offset} claims ${count} entries`);
  const body = await r.bytes(offset + countBytes, count * entrySize + (r.big ? 8 : 4), `image directory at byte ${offset}`);
  const tags = new Map<number, TagValue>();
  for (let i = 0; i < count; i++) {
    const e = i * entrySize;
    const tag = r.u16(body, e);
    if (!WANTED.has(tag)) continue;
    const type = r.u16(body, e + 2);
    const n = r.big ? r.u64(body, e + 4) : r.u32(body, e + 4);
    const inline = body.subarray(e + (r.big ? 12 : 8), e + entrySize);
    tags.set(tag, await readValue(r, type, n, inline));
  }
  const next = r.offset(body, count * entrySize);

  const width = num(tags, TiffTag.ImageWidth);
  const height = num(tags, TiffTag.ImageLength);
  if (width === undefined || height === undefined) {
    throw new TiffStructureError(`image directory at byte ${offset} has no ImageWidth/ImageLength`);
  }
  if (width < 1 || height < 1 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw new TiffStructureError(`image directory at byte ${offset} claims ${width}x${height} pixels, outside 1..${MAX_DIMENSION}`);
  }
  const tileWidth = num(tags, TiffTag.TileWidth) ?? null;
  const tileHeight = num(tags, TiffTag.TileLength) ?? null;
  const description = tags.get(TiffTag.ImageDescription);

  const subIfds: TiffDirectory[] = [];
  const subOffsets = tags.get(TiffTag.SubIFDs);
  if (Array.isArray(subOffsets) && depth === 0) {
    for (let i = 0; i < subOffsets.length && i < MAX_PAGES; i++) {
      const o = subOffsets[i];
      if (o === undefined || o === 0) continue;
      subIfds.push((await readIfd(r, o, -1, i, depth + 1)).dir);
    }
  }

  return {
    dir: {
      page,
      subifd,
      offset,
      tags,
      width,
      height,
      tiled: tileWidth !== null && tileHeight !== null,
      tileWidth,
      tileHeight,
      compression: num(tags, TiffTag.Compression) ?? 1,
      description: typeof description === 'string' ? description : '',
      subIfds,
    },
    next,
  };
}

/** Reads every page's directory (and first-level SubIFDs). Throws TiffStructureError on damage. */
export async function readTiffDirectories(path: string): Promise<TiffFile> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 16) throw new TiffStructureError(`file has only ${size} bytes: truncated before the end of the TIFF header`);
    const head = Buffer.alloc(16);
    await fh.read(head, 0, 16, 0);
    if (!isTiffMagic(head)) throw new TiffStructureError('not a TIFF file');
    const le = head[0] === 0x49;
    const big = (le ? head.readUInt16LE(2) : head.readUInt16BE(2)) === 43;
    const r = new Reader(fh, size, le, big);
    let offset = big ? r.u64(head, 8) : r.u32(head, 4);
    const pages: TiffDirectory[] = [];
    const seen = new Set<number>();
    while (offset !== 0) {
      if (seen.has(offset)) throw new TiffStructureError(`image directory chain loops back to byte ${offset}`);
      if (pages.length >= MAX_PAGES) throw new TiffStructureError(`more than ${MAX_PAGES} image directories`);
      seen.add(offset);
      const { dir, next } = await readIfd(r, offset, pages.length, -1, 0);
      pages.push(dir);
      offset = next;
    }
    if (pages.length === 0) throw new TiffStructureError('TIFF has no image directories');
    return { bigTiff: big, littleEndian: le, fileSize: size, pages };
  } finally {
    await fh.close();
  }
}
