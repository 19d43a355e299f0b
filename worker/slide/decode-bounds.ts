/**
 * Bounds on how much decoding a TIFF can demand, checked from its directories before any pixel is
 * decoded (issue 13: "cap decompressed bytes"). A few hundred KB of Deflate can hold gigabytes of
 * one colour, and a tile table can point every tile at the same bytes; a reader that trusts the
 * header decodes for minutes, or allocates gigabytes for one block. Three rules for TIFFs (and
 * the block rule for plain rasters, checkRasterBounds):
 *
 *   block:     one strip or tile, decoded, is at most DECODE_LIMITS.blockBytes. libtiff allocates
 *              and decodes a whole block to hand out any pixel of it, so this is the memory of
 *              one read and the work of its smallest read. Uncompressed strips are exempt: their
 *              bytes are in the file, and libtiff reads big uncompressed strips in pieces (image
 *              tools write whole images as one such strip).
 *   strips:    a level stored in strips (full-width bands, not tiles) beyond the single-level
 *              pixel limit is refused: every region read decodes whole bands across the slide,
 *              so a pass over it decodes the level (width / region) times over.
 *   expansion: a level's decoded bytes over the distinct bytes its blocks occupy in the file is
 *              at most EXPANSION_SLACK times what libtiff accepts for one large block of that
 *              codec (1000x for Deflate, LZW, JPEG and the rest; more for ZSTD, LZMA, JPEG XL).
 *              Counting each stored byte once catches tables that point many blocks at the same
 *              bytes; the slack leaves room for writers that store identical blank-glass tiles
 *              once (tifftools does), where a mostly empty slide legitimately exceeds 1000x.
 *              Small levels are exempt: decoding them all costs seconds whatever they claim.
 *
 * With these, decoding a whole level costs at most ~EXPANSION_SLACK x 1000 x the file's size, and
 * a region read at most a few blocks. The limits sit far above what scanners write (tiles of 240
 * to 1024 px: 0.2-3 MiB; whole levels compress 10-50x as JPEG, at most ~1000x as Deflate of blank
 * glass): checked against every slide in test/fixtures/slides.
 */
import { CorruptSlideError, TooLargeSlideError } from './errors.js';
import { TiffTag, type TagValue, type TiffDirectory } from './tiff-directory.js';

export const DECODE_LIMITS = {
  /** Decoded bytes of one strip or tile, and of a whole PNG/JPEG (256 MiB: 9000^2 px RGB; real tiles are < 4 MiB). */
  blockBytes: 2 ** 28,
  /** Levels that decode to less than this are not checked for expansion (1 GiB: seconds to decode). */
  expansionFloorBytes: 2 ** 30,
} as const;

/** What to do with an image too large for its layout: the same words in every refusal. */
export const CONVERT_HINT = 'convert it to a tiled pyramidal TIFF first, e.g. `vips tiffsave in out.tif --tile --pyramid --compression jpeg`';

/** How far beyond libtiff's per-block bound a whole level may go (deduplicated blank tiles). */
export const EXPANSION_SLACK = 8;

/**
 * libtiff's "likely invalid byte count" bound for one block over 100 MB (tif_read.c), by
 * compression: the most a real block of that codec compresses.
 */
function codecExpansion(compression: number, samplesPerPixel: number): number {
  if (compression === 50000) return 33_000; // ZSTD
  if (compression === 50002) return 25_000 * samplesPerPixel; // JPEG XL
  if (compression === 34925) return 7_000; // LZMA
  return 1_000;
}

const CODEC_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'uncompressed'],
  [5, 'LZW'],
  [6, 'old-style JPEG'],
  [7, 'JPEG'],
  [8, 'Deflate'],
  [32773, 'PackBits'],
  [32946, 'Deflate'],
  [34925, 'LZMA'],
  [50000, 'ZSTD'],
  [50001, 'WebP'],
  [50002, 'JPEG XL'],
]);

function codecName(compression: number): string {
  return CODEC_NAMES.get(compression) ?? `compression ${compression}`;
}

/** 1536 -> "1.5 KiB", for messages. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function first(tags: ReadonlyMap<number, TagValue>, tag: number): number | undefined {
  const v = tags.get(tag);
  return Array.isArray(v) ? v[0] : undefined;
}

function list(tags: ReadonlyMap<number, TagValue>, tag: number): readonly number[] | null {
  const v = tags.get(tag);
  return Array.isArray(v) ? v : null;
}

/** How a directory's pixels are cut into blocks, and what one block decodes to. */
export interface BlockLayout {
  readonly kind: 'tile' | 'strip';
  readonly blockWidth: number;
  readonly blockHeight: number;
  /** Blocks the image needs (per plane when samples are stored in separate planes). */
  readonly blocks: number;
  /** Decoded bytes of one full block. */
  readonly blockBytes: number;
  readonly offsets: readonly number[] | null;
  readonly byteCounts: readonly number[] | null;
}

export function blockLayout(path: string, dir: TiffDirectory, what: string): BlockLayout {
  const spp = Math.max(1, first(dir.tags, TiffTag.SamplesPerPixel) ?? 1);
  const bits = Math.max(1, ...(list(dir.tags, TiffTag.BitsPerSample) ?? [1]).slice(0, 16));
  if (bits > 64) throw new CorruptSlideError(path, `${what} claims ${bits} bits per sample (at most 64 exist): the directory is damaged`);
  // Upper bound on a sample's size: libvips unpacks sub-byte samples to bytes.
  const sampleBytes = Math.ceil(bits / 8);
  const planes = first(dir.tags, TiffTag.PlanarConfiguration) === 2 ? spp : 1;
  const pixelBytes = (planes === 1 ? spp : 1) * sampleBytes;
  if (dir.tiled) {
    const tw = dir.tileWidth ?? 0;
    const th = dir.tileHeight ?? 0;
    if (tw < 1 || th < 1) throw new CorruptSlideError(path, `${what} claims tiles of ${tw} x ${th} px: the tile size is damaged`);
    return {
      kind: 'tile',
      blockWidth: tw,
      blockHeight: th,
      blocks: Math.ceil(dir.width / tw) * Math.ceil(dir.height / th) * planes,
      blockBytes: tw * th * pixelBytes,
      offsets: list(dir.tags, TiffTag.TileOffsets),
      byteCounts: list(dir.tags, TiffTag.TileByteCounts),
    };
  }
  // Absent (or 0, which libtiff also reads as "the whole image"): one strip.
  const rps = first(dir.tags, TiffTag.RowsPerStrip) ?? 0;
  const rows = rps < 1 ? dir.height : Math.min(rps, dir.height);
  return {
    kind: 'strip',
    blockWidth: dir.width,
    blockHeight: rows,
    blocks: Math.ceil(dir.height / rows) * planes,
    blockBytes: dir.width * rows * pixelBytes,
    offsets: list(dir.tags, TiffTag.StripOffsets),
    byteCounts: list(dir.tags, TiffTag.StripByteCounts),
  };
}

/** Bytes of the file covered by at least one of the blocks' [offset, offset + count) ranges. */
export function distinctStoredBytes(offsets: readonly number[], counts: readonly number[], fileSize: number): number {
  const ranges: [number, number][] = [];
  const n = Math.min(offsets.length, counts.length);
  for (let i = 0; i < n; i++) {
    const o = offsets[i] as number;
    const c = counts[i] as number;
    if (c <= 0 || o <= 0 || o >= fileSize) continue;
    ranges.push([o, Math.min(fileSize, o + c)]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = 0;
  for (const [s, e] of ranges) {
    if (e <= end) continue;
    total += e - Math.max(s, end);
    end = e;
  }
  return total;
}

/** Decoded bytes of the blocks that have data (sparse blocks, offset or count 0, decode to nothing). */
function decodedBytesOfStoredBlocks(layout: BlockLayout, dir: TiffDirectory): number | null {
  const { offsets, byteCounts: counts } = layout;
  if (offsets === null || counts === null) return null;
  const n = Math.min(offsets.length, counts.length, layout.blocks);
  let total = 0;
  const stripsPerPlane = Math.ceil(dir.height / layout.blockHeight);
  for (let i = 0; i < n; i++) {
    if ((offsets[i] as number) <= 0 || (counts[i] as number) <= 0) continue;
    // The last strip of a plane holds only the rows that are left.
    if (layout.kind === 'strip') {
      const row = (i % stripsPerPlane) * layout.blockHeight;
      total += (layout.blockBytes / layout.blockHeight) * Math.min(layout.blockHeight, dir.height - row);
    } else {
      total += layout.blockBytes;
    }
  }
  return total;
}

export interface CheckedDirectory {
  readonly dir: TiffDirectory;
  /** "level 0", "the label image": how messages name it. */
  readonly what: string;
  /** Pyramid levels get the strip and expansion rules; associated images only the block rule. */
  readonly isLevel: boolean;
}

/**
 * Throws TooLargeSlideError or CorruptSlideError when one of `dirs` would make a reader decode far
 * more than the file holds (see the rules above). `singleLevelPixels` is the strip rule's limit.
 */
export function checkDecodeBounds(path: string, dirs: readonly CheckedDirectory[], fileSize: number, singleLevelPixels: number): void {
  for (const { dir, what, isLevel } of dirs) {
    const b = blockLayout(path, dir, what);
    const spp = Math.max(1, first(dir.tags, TiffTag.SamplesPerPixel) ?? 1);
    if ((dir.compression !== 1 || b.kind === 'tile') && b.blockBytes > DECODE_LIMITS.blockBytes) {
      throw new TooLargeSlideError(
        path,
        `${what} (${dir.width} x ${dir.height} px) is stored in ${b.kind}s of ${b.blockWidth} x ${b.blockHeight} px, ${formatBytes(b.blockBytes)} each when decoded (${codecName(dir.compression)}): ` +
          `more than the ${formatBytes(DECODE_LIMITS.blockBytes)} one read may decode; refused before decoding. If it is a real image, ${CONVERT_HINT}`,
      );
    }
    if (!isLevel) continue;
    if (b.kind === 'strip' && dir.width * dir.height > singleLevelPixels) {
      throw new TooLargeSlideError(
        path,
        `${what} is ${dir.width} x ${dir.height} px stored in strips, not tiles: every read decodes whole ${dir.width}-px-wide bands, and the level is larger than ${singleLevelPixels} px; ${CONVERT_HINT}`,
      );
    }
    const decoded = decodedBytesOfStoredBlocks(b, dir);
    if (decoded === null || decoded < DECODE_LIMITS.expansionFloorBytes || b.offsets === null || b.byteCounts === null) continue;
    const stored = distinctStoredBytes(b.offsets.slice(0, b.blocks), b.byteCounts.slice(0, b.blocks), fileSize);
    const limit = codecExpansion(dir.compression, spp) * EXPANSION_SLACK;
    if (decoded > limit * Math.max(1, stored)) {
      const ratio = decoded / Math.max(1, stored);
      throw new CorruptSlideError(
        path,
        `${what} (${dir.width} x ${dir.height} px, ${codecName(dir.compression)}) would decode to ${formatBytes(decoded)} from ${formatBytes(stored)} of distinct stored data ` +
          `(${ratio >= 1e6 ? `${(ratio / 1e6).toFixed(1)} million` : Math.round(ratio)} x; at most ${limit} x is plausible): its ${b.kind}s share, lack or overstate their data, as in a crafted decompression bomb; refused before decoding`,
      );
    }
  }
}

const DEPTH_BYTES: Readonly<Record<string, number>> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

/**
 * The block rule for plain raster images (PNG, JPEG, WebP, ...): their decoders run from the
 * first row, so every region read decodes the image down to that region, and the tissue overview
 * alone decodes it several times over. A crafted 16000^2 px PNG of one colour is 780 KB and costs
 * minutes; a raster beyond DECODE_LIMITS.blockBytes decoded is refused like an oversized strip.
 */
export function checkRasterBounds(path: string, format: string, width: number, height: number, channels: number, depth: string | undefined): void {
  const bytes = width * height * Math.max(1, channels) * (DEPTH_BYTES[depth ?? 'uchar'] ?? 1);
  if (bytes > DECODE_LIMITS.blockBytes) {
    throw new TooLargeSlideError(
      path,
      `a ${format} image of ${width} x ${height} px (${formatBytes(bytes)} decoded) is decoded from its first row for every region read; larger than ${formatBytes(DECODE_LIMITS.blockBytes)}, it is refused before decoding: ${CONVERT_HINT}`,
    );
  }
}
