/**
 * The tile server's fast path: Deep Zoom tiles that are exactly a stored JPEG tile of the slide
 * are sent as those bytes (tables spliced in), never decoded and re-encoded. Checked against the
 * decoded pixels of the same place through readRegion, on a libvips pyramid with 256 px tiles
 * and on Aperio's own tiles (240 px, which the Deep Zoom grid cannot reuse).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { DeepZoomGeometry } from '../../viewer/server/tiles/deep-zoom.js';
import { SlideTileRenderer, storedTile } from '../../viewer/server/tiles/slide-tiler.js';
import { dziInfo, type TileTarget } from '../../viewer/server/tiles/tile-routes.js';
import { CMU, diff, tempDir } from '../helpers.js';

async function decode(jpeg: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(jpeg).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe('stored JPEG tiles as Deep Zoom tiles', () => {
  let source: SlideSource;
  let geometry: DeepZoomGeometry;
  let path: string;

  beforeAll(async () => {
    path = join(tempDir(), 'pyramid-256.tif');
    await sharp(CMU).tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85 }).toFile(path);
    source = await openSlide(path);
    geometry = new DeepZoomGeometry(source.width, source.height, { tileSize: 256, overlap: 0 });
  });
  afterAll(async () => {
    await source?.close();
  });

  it('hands out interior tiles of every exact level as the stored bytes, the same pixels readRegion decodes', async () => {
    expect(source.storedTileSize?.(0)).toEqual({ width: 256, height: 256 });
    let checked = 0;
    for (const [dz, col, row] of [[geometry.maxLevel, 2, 3], [geometry.maxLevel, 7, 10], [geometry.maxLevel - 1, 1, 2], [geometry.maxLevel - 2, 1, 1]] as const) {
      const tile = geometry.requireTile(dz, col, row);
      const jpeg = await storedTile(source, geometry, tile);
      expect(jpeg, `level ${dz} tile ${col}_${row}`).not.toBeNull();
      const got = await decode(jpeg as Buffer);
      expect([got.width, got.height]).toEqual([256, 256]);
      // The stored level's own pixels at the tile's place, decoded by libvips (page k of this
      // pyramid is level k; readRegion would round level-0 coordinates through a downsample a
      // hair above 2^k).
      const level = source.levels.findIndex((l) => Math.abs(l.downsample - tile.downsample) / tile.downsample < 0.01);
      const want = await sharp(path, { page: level }).extract({ left: col * 256, top: row * 256, width: 256, height: 256 }).removeAlpha().raw().toBuffer();
      const d = diff(got.data, want);
      // The same JPEG data through the same decoder: identical up to the colour conversion's rounding.
      expect(d.max, `level ${dz} tile ${col}_${row}`).toBeLessThanOrEqual(2);
      expect(d.mean).toBeLessThan(0.05);
      checked++;
    }
    expect(checked).toBe(4);
  });

  it('does not use stored tiles for cropped edge tiles, resampled levels or another tile size', async () => {
    const { cols } = geometry.tileGrid(geometry.maxLevel);
    expect(await storedTile(source, geometry, geometry.requireTile(geometry.maxLevel, cols - 1, 0))).toBeNull();
    const other = new DeepZoomGeometry(source.width, source.height, { tileSize: 512, overlap: 0 });
    expect(await storedTile(source, other, other.requireTile(other.maxLevel, 1, 1))).toBeNull();
    const overlapped = new DeepZoomGeometry(source.width, source.height, { tileSize: 256, overlap: 1 });
    expect(await storedTile(source, overlapped, overlapped.requireTile(overlapped.maxLevel, 1, 1))).toBeNull();
  });

  it('is what the renderer serves, counted as stored; other tiles are still rendered', async () => {
    const renderer = new SlideTileRenderer();
    const tile = geometry.requireTile(geometry.maxLevel, 3, 4);
    const served = await renderer.render('k', source, geometry, tile);
    expect(served.equals((await storedTile(source, geometry, tile)) as Buffer)).toBe(true);
    expect(renderer.stats().stored).toBe(1);
    const { cols } = geometry.tileGrid(geometry.maxLevel);
    const edge = await decode(await renderer.render('k', source, geometry, geometry.requireTile(geometry.maxLevel, cols - 1, 0)));
    expect(edge.width).toBe(source.width - (cols - 1) * 256);
    expect(renderer.stats().stored).toBe(1);
  });
});

describe('stored tiles of an Aperio SVS', () => {
  it('are complete JPEG files with the pixels readRegion decodes (tables and colour space right)', async () => {
    const svs = await openSlide(CMU);
    try {
      const size = svs.storedTileSize?.(0);
      expect(size).toEqual({ width: 240, height: 240 });
      const jpeg = await svs.readStoredTile?.(0, 2, 3);
      expect(jpeg).toBeInstanceOf(Buffer);
      const got = await decode(jpeg as Buffer);
      const want = await svs.readRegion(0, 2 * 240, 3 * 240, 240, 240);
      const d = diff(got.data, want.data);
      expect(d.max).toBeLessThanOrEqual(2);
      expect(await svs.readStoredTile?.(0, 999, 0)).toBeNull();

      // The Deep Zoom grid adopts the stored 240 px tiles, so interior tiles go out as stored.
      const target: TileTarget = { id: 'a'.repeat(24), slideVersion: '0123', heatmapVersion: null, withSource: (use) => use(svs), heatmap: async () => null };
      const info = await dziInfo(target);
      expect(info.tileSize).toBe(240);
      expect((await dziInfo(target, { followStoredTiles: false })).tileSize).toBe(256);
      expect((await dziInfo(target, { slideFormat: 'webp' })).tileSize).toBe(256);
      const g = new DeepZoomGeometry(svs.width, svs.height, { tileSize: info.tileSize, overlap: 0 });
      const stored = await storedTile(svs, g, g.requireTile(g.maxLevel, 2, 3));
      expect(stored?.equals(jpeg as Buffer)).toBe(true);
    } finally {
      await svs.close();
    }
  });
});
