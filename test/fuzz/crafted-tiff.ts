/**
 * Crafted TIFFs for bounded-input tests and the fuzzer: strip- or tile-organised, uncompressed or
 * Deflate, optionally with every block pointing at the same bytes ("aliased"), so that a file of a
 * few hundred KB can describe gigabytes of pixels. test/tiff-writer.ts writes honest files; this
 * one writes what an attacker or a broken converter would, and stays synchronous and small.
 */
import { deflateSync } from 'node:zlib';
import { TiffBytes } from '../tiff-writer.js';

export interface CraftedPage {
  width: number;
  height: number;
  /** Strips of `rowsPerStrip` full-width rows, or tiles. */
  layout: { kind: 'strip'; rowsPerStrip: number } | { kind: 'tile'; tileWidth: number; tileHeight: number };
  /** 1 none, 8 or 32946 Deflate. */
  compression?: 1 | 8 | 32946;
  /** Every pixel's RGB (constant images compress ~1000x with Deflate). */
  fill?: readonly [number, number, number];
  /** Every strip/tile entry points at one stored block: the file holds one block's bytes. */
  alias?: boolean;
  description?: string;
  /** Microns per pixel, written as ResolutionUnit cm. */
  mpp?: number;
  /** NewSubfileType 1 (a reduced-resolution copy). */
  reduced?: boolean;
  /** Extra or replacing tag values (SHORT when every value fits 16 bits, else LONG). */
  tags?: Record<number, readonly number[]>;
}

type Entry = { tag: number; type: number; data: Buffer; count: number };

const TYPE_SIZE: Record<number, number> = { 2: 1, 3: 2, 4: 4, 5: 8 };

function encodeNumbers(type: number, values: readonly number[]): Buffer {
  const size = TYPE_SIZE[type] as number;
  const b = Buffer.alloc(size * values.length);
  values.forEach((v, i) => {
    if (type === 3) b.writeUInt16LE(v, i * 2);
    else if (type === 4) b.writeUInt32LE(v >>> 0, i * 4);
    else {
      // RATIONAL: v as n / 1000 keeps three decimals of a resolution.
      b.writeUInt32LE(Math.round(v * 1000) >>> 0, i * 8);
      b.writeUInt32LE(1000, i * 8 + 4);
    }
  });
  return b;
}

function numbers(tag: number, values: readonly number[], type?: number): Entry {
  const t = type ?? (values.every((v) => v >= 0 && v <= 0xffff) ? 3 : 4);
  return { tag, type: t, data: encodeNumbers(t, values), count: values.length };
}

/** The uncompressed bytes of one block: `rows` rows of `cols` pixels of `fill`. */
function rawBlock(cols: number, rows: number, fill: readonly [number, number, number]): Buffer {
  const row = Buffer.alloc(cols * 3);
  for (let x = 0; x < cols; x++) row.set(fill, x * 3);
  const out = Buffer.alloc(cols * 3 * rows);
  for (let y = 0; y < rows; y++) row.copy(out, y * row.length);
  return out;
}

/** A classic little-endian TIFF of `pages` (page 0 first), every page RGB 8 bits. */
export function craftTiff(pages: readonly CraftedPage[]): Buffer {
  // The 8-byte header is written last, in front of the rest.
  const out = new TiffBytes({ start: 8, wordAligned: true });
  const ifds: { at: number; nextAt: number }[] = [];
  for (const p of pages) {
    const compression = p.compression ?? 8;
    const fill = p.fill ?? [0, 0, 0];
    const tiled = p.layout.kind === 'tile';
    const bw = p.layout.kind === 'tile' ? p.layout.tileWidth : p.width;
    const bh = p.layout.kind === 'tile' ? p.layout.tileHeight : p.layout.rowsPerStrip;
    const across = Math.ceil(p.width / bw);
    const down = Math.ceil(p.height / bh);
    // Tiles are always full size; strips are full width and the last one holds what is left.
    // Identical blocks are encoded once; they are stored once per entry unless aliased.
    const encoded = new Map<number, Buffer>();
    const encode = (rows: number): Buffer => {
      let b = encoded.get(rows);
      if (b === undefined) {
        const raw = rawBlock(bw, rows, fill);
        b = compression === 1 ? raw : deflateSync(raw, { level: 9 });
        encoded.set(rows, b);
      }
      return b;
    };
    const offsets: number[] = [];
    const counts: number[] = [];
    let aliasAt = -1;
    for (let r = 0; r < down; r++) {
      const rows = tiled ? bh : Math.min(bh, p.height - r * bh);
      const block = encode(rows);
      for (let c = 0; c < across; c++) {
        if (p.alias) {
          if (aliasAt < 0) aliasAt = out.push(block);
          offsets.push(aliasAt);
        } else {
          offsets.push(out.push(block));
        }
        counts.push(block.length);
      }
    }
    const entries = new Map<number, Entry>();
    const set = (e: Entry): void => void entries.set(e.tag, e);
    set(numbers(254, [p.reduced ? 1 : 0], 4));
    set(numbers(256, [p.width], 4));
    set(numbers(257, [p.height], 4));
    set(numbers(258, [8, 8, 8]));
    set(numbers(259, [compression]));
    set(numbers(262, [2]));
    set(numbers(277, [3]));
    set(numbers(284, [1]));
    if (tiled) {
      set(numbers(322, [bw]));
      set(numbers(323, [bh]));
      set(numbers(324, offsets, 4));
      set(numbers(325, counts, 4));
    } else {
      set(numbers(273, offsets, 4));
      set(numbers(278, [bh], 4));
      set(numbers(279, counts, 4));
    }
    if (p.description !== undefined) {
      const d = Buffer.from(`${p.description}\0`, 'latin1');
      set({ tag: 270, type: 2, data: d, count: d.length });
    }
    if (p.mpp !== undefined) {
      const perCm = 10_000 / p.mpp;
      set(numbers(282, [perCm], 5));
      set(numbers(283, [perCm], 5));
      set(numbers(296, [3]));
    }
    for (const [tag, values] of Object.entries(p.tags ?? {})) set(numbers(Number(tag), values));
    const sorted = [...entries.values()].sort((a, b) => a.tag - b.tag);
    const valueAt = sorted.map((e) => (e.data.length > 4 ? out.push(e.data) : -1));
    const ifd = Buffer.alloc(2 + sorted.length * 12 + 4);
    ifd.writeUInt16LE(sorted.length, 0);
    sorted.forEach((e, i) => {
      const o = 2 + i * 12;
      ifd.writeUInt16LE(e.tag, o);
      ifd.writeUInt16LE(e.type, o + 2);
      ifd.writeUInt32LE(e.count, o + 4);
      const at = valueAt[i] as number;
      if (at >= 0) ifd.writeUInt32LE(at, o + 8);
      else e.data.copy(ifd, o + 8);
    });
    const at = out.push(ifd);
    ifds.push({ at, nextAt: at + 2 + sorted.length * 12 });
  }
  const bytes = out.bytes();
  const head = Buffer.alloc(8);
  head.write('II', 0, 'latin1');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(ifds[0]?.at ?? 0, 4);
  const file = Buffer.concat([head, bytes]);
  ifds.forEach((d, i) => file.writeUInt32LE(ifds[i + 1]?.at ?? 0, d.nextAt));
  return file;
}
