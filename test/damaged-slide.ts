/**
 * A real slide with some level-0 tiles destroyed: the overview (read from a coarse level) and the
 * region plan are fine, and the damage shows only when the regions over it are read for the model.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import type { SlideSource } from '../worker/slide/slide-source.js';
import { CMU } from './helpers.js';

/** Offsets and byte counts of the tiles of a classic little-endian TIFF's first IFD. */
function firstIfdTiles(bytes: Buffer): { offsets: number[]; counts: number[]; tileWidth: number; width: number } {
  if (bytes.readUInt16LE(0) !== 0x4949 || bytes.readUInt16LE(2) !== 42) throw new Error('expected a classic little-endian TIFF');
  const ifd = bytes.readUInt32LE(4);
  const n = bytes.readUInt16LE(ifd);
  const tags = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    const [tag, type, count] = [bytes.readUInt16LE(e), bytes.readUInt16LE(e + 2), bytes.readUInt32LE(e + 4)];
    const size = type === 3 ? 2 : 4;
    const at = count * size <= 4 ? e + 8 : bytes.readUInt32LE(e + 8);
    tags.set(tag, Array.from({ length: count }, (_, k) => (size === 2 ? bytes.readUInt16LE(at + k * 2) : bytes.readUInt32LE(at + k * 4))));
  }
  const get = (tag: number): number[] => {
    const v = tags.get(tag);
    if (v === undefined) throw new Error(`TIFF tag ${tag} missing`);
    return v;
  };
  return { offsets: get(324), counts: get(325), tileWidth: get(322)[0] as number, width: get(256)[0] as number };
}

/**
 * Writes `source` as a tiled JPEG pyramid at `mpp` and overwrites the level-0 tiles containing the
 * given level-0 points with garbage.
 */
export async function writeSlideWithDamagedTiles(source: string, out: string, mpp: number, points: readonly [number, number][]): Promise<void> {
  const pxPerMm = 1000 / mpp;
  await sharp(source).tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90, resolutionUnit: 'cm', xres: pxPerMm, yres: pxPerMm }).toFile(out);
  const bytes = readFileSync(out);
  const { offsets, counts, tileWidth, width } = firstIfdTiles(bytes);
  const across = Math.ceil(width / tileWidth);
  for (const [x, y] of points) {
    const t = Math.floor(y / tileWidth) * across + Math.floor(x / tileWidth);
    const [o, c] = [offsets[t], counts[t]];
    if (o === undefined || c === undefined) throw new Error(`no tile at (${x}, ${y})`);
    bytes.fill(0x5a, o, o + c);
  }
  writeFileSync(out, bytes);
}

/**
 * How a tile is damaged. scrambled: the middle fifth of its bytes scrambled; zero-run: 64 bytes
 * in its middle zeroed (the audit's case: libvips' check missed it); truncated: its entropy-coded
 * segment ends (EOI) 200 bytes early and its byte count still points past that; past-eof: its
 * byte count runs 1000 bytes past the end of the file.
 */
export type Damage = 'scrambled' | 'zero-run' | 'truncated' | 'past-eof';

/** CMU-1 with the level-0 tiles under `points` damaged. */
export function damagedCmu(path: string, points: readonly [number, number][], how: Damage = 'scrambled'): void {
  const b = Buffer.from(readFileSync(CMU));
  const ifd = b.readUInt32LE(4);
  const tags = new Map<number, number[]>();
  const at = new Map<number, number>();
  for (let i = 0; i < b.readUInt16LE(ifd); i++) {
    const e = ifd + 2 + i * 12;
    const [tag, type, count] = [b.readUInt16LE(e), b.readUInt16LE(e + 2), b.readUInt32LE(e + 4)];
    const size = type === 3 ? 2 : 4;
    at.set(tag, count * size <= 4 ? e + 8 : b.readUInt32LE(e + 8));
    tags.set(tag, Array.from({ length: count }, (_, k) => (size === 2 ? b.readUInt16LE(at.get(tag)! + k * 2) : b.readUInt32LE(at.get(tag)! + k * 4))));
  }
  const [offsets, counts, tile, width] = [tags.get(324)!, tags.get(325)!, tags.get(322)![0]!, tags.get(256)![0]!];
  const across = Math.ceil(width / tile);
  for (const [x, y] of points) {
    const t = Math.floor(y / tile) * across + Math.floor(x / tile);
    const [o, c] = [offsets[t]!, counts[t]!];
    if (how === 'scrambled') for (let k = Math.floor(c * 0.4); k < Math.floor(c * 0.6); k++) b[o + k] = ((b[o + k] as number) * 7 + 13) & 0xff;
    else if (how === 'zero-run') b.fill(0, o + Math.floor(c / 2), o + Math.floor(c / 2) + 64);
    else if (how === 'truncated') b.set([0xff, 0xd9], o + c - 200);
    else b.writeUInt32LE(b.length - o + 1000, at.get(325)! + t * 4);
  }
  writeFileSync(path, b);
}

/** Every stored JPEG tile of a slide (complete JPEG files), level 0 first. */
export async function storedTiles(s: SlideSource): Promise<{ where: string; jpeg: Buffer; maxPixels: number }[]> {
  const out: { where: string; jpeg: Buffer; maxPixels: number }[] = [];
  for (const [level, { width, height }] of s.levels.entries()) {
    const size = s.storedTileSize?.(level);
    if (size === null || size === undefined) continue;
    for (let row = 0; row * size.height < height; row++) {
      for (let col = 0; col * size.width < width; col++) {
        const jpeg = await s.readStoredTile?.(level, col, row);
        if (jpeg !== null && jpeg !== undefined) out.push({ where: `level ${level} tile (${col}, ${row})`, jpeg, maxPixels: size.width * size.height });
      }
    }
  }
  return out;
}
