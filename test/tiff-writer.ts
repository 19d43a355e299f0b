/**
 * A small, test-only TIFF writer for layouts sharp cannot produce: OME-TIFF with its pyramid in
 * SubIFDs, an arbitrary ImageDescription, classic or BigTIFF. Uncompressed RGB, 64 px tiles.
 */
import type { RgbImage } from '../worker/slide/slide-source.js';

export interface TiffImageSpec {
  image: RgbImage;
  description?: string;
  /** Reduced-resolution copies stored as SubIFDs of this page. */
  subImages?: RgbImage[];
}

const TILE = 64;

/**
 * The file being built, chunk by chunk: push returns the offset a chunk lands at. `start` bytes
 * are left for a header written last; `wordAligned` pads each chunk to an even offset, as the
 * TIFF specification asks of values and directories.
 */
export class TiffBytes {
  private readonly chunks: Buffer[] = [];
  length: number;
  constructor(private readonly options: { start?: number; wordAligned?: boolean } = {}) {
    this.length = options.start ?? 0;
  }
  push(b: Buffer): number {
    if (this.options.wordAligned && this.length % 2) {
      this.chunks.push(Buffer.alloc(1));
      this.length += 1;
    }
    const at = this.length;
    this.chunks.push(b);
    this.length += b.length;
    return at;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function tiles(img: RgbImage): Buffer[] {
  const out: Buffer[] = [];
  for (let ty = 0; ty < img.height; ty += TILE) {
    for (let tx = 0; tx < img.width; tx += TILE) {
      const t = Buffer.alloc(TILE * TILE * 3);
      for (let y = 0; y < TILE && ty + y < img.height; y++) {
        const w = Math.min(TILE, img.width - tx);
        img.data.copy(t, y * TILE * 3, ((ty + y) * img.width + tx) * 3, ((ty + y) * img.width + tx + w) * 3);
      }
      out.push(t);
    }
  }
  return out;
}

type Entry = { tag: number; type: number; values: number[] | Buffer };

export function writeTiff(pages: TiffImageSpec[], bigTiff = false): Buffer {
  const out = new TiffBytes();
  const header = Buffer.alloc(bigTiff ? 16 : 8);
  header.write('II', 0, 'latin1');
  header.writeUInt16LE(bigTiff ? 43 : 42, 2);
  if (bigTiff) {
    header.writeUInt16LE(8, 4);
  }
  out.push(header);
  const OFFSET_TYPE = bigTiff ? 16 : 4; // LONG8 or LONG
  const typeSize: Record<number, number> = { 2: 1, 3: 2, 4: 4, 16: 8 };

  /** Writes one image's tiles and directory; returns the directory offset and where its next-IFD pointer lives. */
  const writeImage = (img: RgbImage, reduced: boolean, description: string | undefined, subIfdOffsets: number[]): { ifd: number; nextAt: number } => {
    const tileOffsets = tiles(img).map((t) => out.push(t));
    const entries: Entry[] = [
      { tag: 254, type: 4, values: [reduced ? 1 : 0] },
      { tag: 256, type: 4, values: [img.width] },
      { tag: 257, type: 4, values: [img.height] },
      { tag: 258, type: 3, values: [8, 8, 8] },
      { tag: 259, type: 3, values: [1] },
      { tag: 262, type: 3, values: [2] },
      { tag: 277, type: 3, values: [3] },
      { tag: 284, type: 3, values: [1] },
      { tag: 322, type: 3, values: [TILE] },
      { tag: 323, type: 3, values: [TILE] },
      { tag: 324, type: OFFSET_TYPE, values: tileOffsets },
      { tag: 325, type: OFFSET_TYPE, values: tileOffsets.map(() => TILE * TILE * 3) },
    ];
    if (description !== undefined) entries.push({ tag: 270, type: 2, values: Buffer.from(`${description}\0`, 'latin1') });
    if (subIfdOffsets.length > 0) entries.push({ tag: 330, type: OFFSET_TYPE, values: subIfdOffsets });
    entries.sort((a, b) => a.tag - b.tag);

    const inlineCap = bigTiff ? 8 : 4;
    const encode = (e: Entry): Buffer => {
      if (Buffer.isBuffer(e.values)) return e.values;
      const size = typeSize[e.type] as number;
      const b = Buffer.alloc(size * e.values.length);
      e.values.forEach((v, i) => {
        if (size === 2) b.writeUInt16LE(v, i * 2);
        else if (size === 4) b.writeUInt32LE(v, i * 4);
        else b.writeBigUInt64LE(BigInt(v), i * 8);
      });
      return b;
    };
    const payloads = entries.map(encode);
    const outOfLine = payloads.map((p) => (p.length > inlineCap ? out.push(p) : -1));
    const entrySize = bigTiff ? 20 : 12;
    const countSize = bigTiff ? 8 : 2;
    const ifd = Buffer.alloc(countSize + entries.length * entrySize + (bigTiff ? 8 : 4));
    if (bigTiff) ifd.writeBigUInt64LE(BigInt(entries.length), 0);
    else ifd.writeUInt16LE(entries.length, 0);
    entries.forEach((e, i) => {
      const o = countSize + i * entrySize;
      const payload = payloads[i] as Buffer;
      const count = Buffer.isBuffer(e.values) ? e.values.length : e.values.length;
      ifd.writeUInt16LE(e.tag, o);
      ifd.writeUInt16LE(e.type, o + 2);
      if (bigTiff) ifd.writeBigUInt64LE(BigInt(count), o + 4);
      else ifd.writeUInt32LE(count, o + 4);
      const valueAt = o + (bigTiff ? 12 : 8);
      const off = outOfLine[i] as number;
      if (off >= 0) {
        if (bigTiff) ifd.writeBigUInt64LE(BigInt(off), valueAt);
        else ifd.writeUInt32LE(off, valueAt);
      } else {
        payload.copy(ifd, valueAt);
      }
    });
    if (out.length % 2) out.push(Buffer.alloc(1)); // IFDs start on a word boundary
    const at = out.push(ifd);
    return { ifd: at, nextAt: at + countSize + entries.length * entrySize };
  };

  const written = pages.map((page) => {
    const subs = (page.subImages ?? []).map((img) => writeImage(img, true, undefined, []).ifd);
    return writeImage(page.image, false, page.description, subs);
  });
  const bytes = out.bytes();
  const first = written[0];
  if (first === undefined) throw new Error('no pages');
  if (bigTiff) bytes.writeBigUInt64LE(BigInt(first.ifd), 8);
  else bytes.writeUInt32LE(first.ifd, 4);
  written.forEach((w, i) => {
    const next = written[i + 1]?.ifd ?? 0;
    if (bigTiff) bytes.writeBigUInt64LE(BigInt(next), w.nextAt);
    else bytes.writeUInt32LE(next, w.nextAt);
  });
  return bytes;
}
