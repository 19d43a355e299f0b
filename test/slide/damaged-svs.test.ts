/**
 * Damaged JPEG tiles in a real Aperio SVS (issue 13): one policy for both backends. The TIFF
 * loader alone would decode the scrambled data into plausible garbage and the slide would finish
 * with a different heatmap; OpenSlide refuses it. Both now fail the read, naming the place, and
 * an analysis of the slide fails instead of filing a wrong result.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import { CorruptSlideError } from '../../worker/slide/errors.js';
import { openSlideAvailable } from '../../worker/slide/openslide-source.js';
import { CMU, cli, tempDir } from '../helpers.js';

/** CMU-1 with the middle fifth of the entropy-coded data of the level-0 tiles under `points` scrambled. */
function damagedCmu(path: string, points: readonly [number, number][]): void {
  const b = Buffer.from(readFileSync(CMU));
  const ifd = b.readUInt32LE(4);
  const tags = new Map<number, number[]>();
  for (let i = 0; i < b.readUInt16LE(ifd); i++) {
    const e = ifd + 2 + i * 12;
    const [tag, type, count] = [b.readUInt16LE(e), b.readUInt16LE(e + 2), b.readUInt32LE(e + 4)];
    const size = type === 3 ? 2 : 4;
    const at = count * size <= 4 ? e + 8 : b.readUInt32LE(e + 8);
    tags.set(tag, Array.from({ length: count }, (_, k) => (size === 2 ? b.readUInt16LE(at + k * 2) : b.readUInt32LE(at + k * 4))));
  }
  const [offsets, counts, tile, width] = [tags.get(324)!, tags.get(325)!, tags.get(322)![0]!, tags.get(256)![0]!];
  const across = Math.ceil(width / tile);
  for (const [x, y] of points) {
    const t = Math.floor(y / tile) * across + Math.floor(x / tile);
    const [o, c] = [offsets[t]!, counts[t]!];
    for (let k = Math.floor(c * 0.4); k < Math.floor(c * 0.6); k++) b[o + k] = ((b[o + k] as number) * 7 + 13) & 0xff;
  }
  writeFileSync(path, b);
}

describe('damaged JPEG tiles in an Aperio SVS', () => {
  const dir = tempDir();
  const path = join(dir, 'damaged-CMU.svs');
  damagedCmu(path, [[1300, 800]]);

  it('fail the read on the sharp backend, naming the tile; intact places still read', async () => {
    const s = await openSlide(path, { backend: 'sharp' });
    try {
      const err = await s.readRegion(0, 1200, 720, 256, 256).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptSlideError);
      expect((err as Error).message).toMatch(/level 0 tile \(5, 3\) at level pixels \(1200, 720\) is damaged: its JPEG data does not decode cleanly \(.+\)/);
      // The same read again fails again (a damaged tile is not remembered as checked).
      await expect(s.readRegion(0, 1250, 750, 64, 64)).rejects.toThrow(/tile \(5, 3\)/);
      expect((await s.readRegion(0, 0, 0, 480, 480)).data.length).toBe(480 * 480 * 3);
    } finally {
      await s.close();
    }
  });

  it.skipIf(!openSlideAvailable())('fail the read on the OpenSlide backend too', async () => {
    const s = await openSlide(path, { backend: 'openslide' });
    try {
      await expect(s.readRegion(0, 1200, 720, 256, 256)).rejects.toThrow(/Corrupt JPEG data/);
    } finally {
      await s.close();
    }
  });

  it('fail the analysis with the reason, instead of a heatmap of garbage', () => {
    const data = join(dir, 'data');
    const r = cli(['analyze', path, '--data', data, '--device', 'cpu']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAILED +.*damaged-CMU\.svs: .*tile \(5, 3\) .* is damaged/m);
  });
});

describe('regions composed from the stored JPEG tiles', () => {
  it('are the pixels libvips decodes, at any window (aligned or not, at the edges)', async () => {
    const s = await openSlide(CMU, { backend: 'sharp' });
    try {
      for (const [x, y, w, h] of [[0, 0, 1024, 1024], [100, 37, 700, 513], [1200, 1900, 1020, 1067], [255, 255, 2, 2], [s.width - 300, s.height - 200, 300, 200]] as const) {
        const ours = (await s.readRegion(0, x, y, w, h)).data;
        const vips = await sharp(CMU, { limitInputPixels: false }).extract({ left: x, top: y, width: w, height: h }).removeAlpha().raw().toBuffer();
        expect(ours.equals(vips), `window ${x},${y} ${w}x${h}`).toBe(true);
      }
    } finally {
      await s.close();
    }
  });
});

