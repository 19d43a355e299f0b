/**
 * Small files that claim huge images (issue 13): refused before any pixel is decoded, in well
 * under a second, with a reason that says what to do; never minutes of decoding.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerOnlyPng } from '../header-only-png.js';
import { openSlide, SLIDE_LIMITS } from '../../worker/slide/open-slide.js';
import { cli, tempDir } from '../helpers.js';

/**
 * A classic TIFF claiming width x height RGB pixels in uncompressed tiles, every tile entry
 * pointing at the same bytes: kilobytes of file for a terapixel image.
 */
function aliasedTiff(width: number, height: number): Buffer {
  // Large tiles keep the tile tables small; every entry names the same 16 bytes (the byte
  // counts lie too, as in a crafted file): nothing may be decoded before the file is refused.
  const tile = 8192;
  const tiles = Math.ceil(width / tile) * Math.ceil(height / tile);
  const tileBytes = 16;
  const entries: [number, number, number, number | number[]][] = []; // tag, type, count, value(s)
  const header = 8;
  const ifdEntries = 11;
  const ifdSize = 2 + ifdEntries * 12 + 4;
  const bpsAt = header + ifdSize;
  const offsetsAt = bpsAt + 6;
  const countsAt = offsetsAt + tiles * 4;
  const tileAt = countsAt + tiles * 4;
  entries.push([256, 4, 1, width], [257, 4, 1, height], [258, 3, 3, bpsAt], [259, 3, 1, 1], [262, 3, 1, 2], [277, 3, 1, 3], [284, 3, 1, 1], [322, 3, 1, tile], [323, 3, 1, tile], [324, 4, tiles, offsetsAt], [325, 4, tiles, countsAt]);
  const buf = Buffer.alloc(tileAt + tileBytes, 0xdd);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(header, 4);
  buf.writeUInt16LE(ifdEntries, header);
  entries.forEach(([tag, type, count, value], i) => {
    const at = header + 2 + i * 12;
    buf.writeUInt16LE(tag, at);
    buf.writeUInt16LE(type, at + 2);
    buf.writeUInt32LE(count, at + 4);
    if (type === 3 && count === 1) buf.writeUInt16LE(value as number, at + 8);
    else buf.writeUInt32LE(value as number, at + 8);
  });
  buf.writeUInt32LE(0, header + 2 + ifdEntries * 12);
  for (let i = 0; i < 3; i++) buf.writeUInt16LE(8, bpsAt + i * 2);
  for (let t = 0; t < tiles; t++) {
    buf.writeUInt32LE(tileAt, offsetsAt + t * 4);
    buf.writeUInt32LE(tileBytes, countsAt + t * 4);
  }
  return buf;
}

describe('files that claim huge images', () => {
  it('a 1e6 x 1e6 px TIFF of aliased tiles (a few MB) is refused at once as more than any scanner writes', async () => {
    const path = join(tempDir(), 'terapixel.tif');
    writeFileSync(path, aliasedTiff(1_000_000, 1_000_000));
    const t0 = performance.now();
    await expect(openSlide(path)).rejects.toThrow(/claims 1000000 x 1000000 px at full resolution, more than any scanner writes/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a 200000 x 200000 px single-level TIFF and a 40000 x 40000 px PNG are refused: no pyramid', async () => {
    const dir = tempDir();
    const tif = join(dir, 'flat.tif');
    writeFileSync(tif, aliasedTiff(200_000, 200_000));
    const png = join(dir, 'huge.png');
    writeFileSync(png, headerOnlyPng(40_000, 40_000));
    for (const path of [tif, png]) {
      const t0 = performance.now();
      await expect(openSlide(path)).rejects.toThrow(/single level \(no pyramid\).*convert it to a tiled pyramidal TIFF/);
      expect(performance.now() - t0).toBeLessThan(5000);
    }
    expect(40_000 * 40_000).toBeGreaterThan(SLIDE_LIMITS.singleLevelPixels);
  });

  it('inspect and analyze on them end in seconds with the reason, not minutes', () => {
    const dir = tempDir();
    const png = join(dir, 'huge.png');
    writeFileSync(png, headerOnlyPng(40_000, 40_000));
    const t0 = performance.now();
    const inspect = cli(['inspect', png, '--out', dir]);
    expect(inspect.code).toBe(3);
    expect(inspect.stderr).toMatch(/huge\.png: 40000 x 40000 px in a single level/);
    const analyze = cli(['analyze', png, '--data', join(dir, 'data'), '--device', 'cpu']);
    expect(analyze.code).toBe(3);
    expect(analyze.stdout).toMatch(/^FAILED +.*huge\.png: .*single level \(no pyramid\)/m);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});
