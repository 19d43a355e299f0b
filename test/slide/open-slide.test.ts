import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { openSlide } from '../../worker/slide/open-slide.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { BOXES, CMU, KIDNEY, NDPI, TINY, diff, tempDir } from '../helpers.js';
import { join } from 'node:path';

const opened: SlideSource[] = [];
async function open(path: string, options: Parameters<typeof openSlide>[1] = {}): Promise<SlideSource> {
  const s = await openSlide(path, options);
  opened.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

describe('metadata of real slides', () => {
  it('Aperio SVS (CMU-1-Small-Region): size, one level, vendor mpp, associated images', async () => {
    const s = await open(CMU);
    expect(s.backend).toBe('sharp');
    expect(s.vendor).toBe('aperio');
    expect([s.width, s.height]).toEqual([2220, 2967]);
    expect(s.levels).toEqual([{ width: 2220, height: 2967, downsample: 1 }]);
    expect(s.mpp).toEqual({ x: 0.499, y: 0.499 });
    expect(s.mppSource).toBe('vendor');
    expect(s.objectivePower).toBe(20);
    expect([...s.associatedImages].sort()).toEqual(['label', 'macro', 'thumbnail']);
    const label = await s.readAssociatedImage('label');
    expect([label.width, label.height]).toEqual([387, 463]);
    expect(label.data.length).toBe(387 * 463 * 3);
  });

  it('generic tiled pyramid: 4 levels with their downsamples; a 72 dpi resolution tag is not taken as mpp', async () => {
    const s = await open(BOXES);
    expect(s.vendor).toBe('generic-tiff');
    expect(s.levels.map((l) => [l.width, l.height])).toEqual([[300, 250], [150, 125], [75, 62], [37, 31]]);
    expect(s.levels[2]?.downsample).toBeCloseTo(4.0161, 3);
    expect(s.mpp).toBeNull();
    expect(s.mppSource).toBeNull();
    expect(s.mppNote).toMatch(/72 dpi/);
  });

  it('Hamamatsu NDPI goes to OpenSlide, with vendor mpp and 7 levels', async () => {
    const s = await open(NDPI);
    expect(s.backend).toBe('openslide');
    expect(s.vendor).toBe('hamamatsu');
    expect([s.width, s.height]).toEqual([3968, 4864]);
    expect(s.levels).toHaveLength(7);
    expect(s.levels[1]?.downsample).toBe(2);
    expect(s.mpp?.x).toBeCloseTo(0.2282, 3);
    expect(s.mppSource).toBe('vendor');
    expect(s.associatedImages).toContain('macro');
  });

  it('plain strip TIFF without resolution: one level, mpp null with the reason', async () => {
    const s = await open(KIDNEY);
    expect(s.backend).toBe('sharp');
    expect(s.levels).toHaveLength(1);
    expect([s.width, s.height]).toEqual([1493, 901]);
    expect(s.mpp).toBeNull();
    expect(s.mppNote).toMatch(/no TIFF resolution/);
  });

  it('--mpp overrides or supplies the resolution, for either backend', async () => {
    const a = await open(KIDNEY, { mpp: 0.25 });
    expect(a.mpp).toEqual({ x: 0.25, y: 0.25 });
    expect(a.mppSource).toBe('override');
    const b = await open(NDPI, { mpp: 0.3 });
    expect(b.mpp).toEqual({ x: 0.3, y: 0.3 });
    expect(b.mppSource).toBe('override');
  });

  it('mpp from TIFF resolution tags when they hold a real scan resolution (cm and inch)', async () => {
    const dir = tempDir();
    const tile = await sharp(CMU, { page: 0 }).extract({ left: 0, top: 0, width: 512, height: 512 }).toBuffer();
    // 0.25 µm/px = 40000 px/cm = 101600 dpi; sharp takes resolution as pixels per mm.
    const cm = join(dir, 'cm.tif');
    await sharp(tile).tiff({ tile: true, pyramid: true, resolutionUnit: 'cm', xres: 4000, yres: 4000 }).toFile(cm);
    const inch = join(dir, 'inch.tif');
    await sharp(tile).tiff({ tile: true, pyramid: true, resolutionUnit: 'inch', xres: 2000, yres: 2000 }).toFile(inch);
    const a = await open(cm);
    expect(a.mppSource).toBe('tiff-resolution');
    expect(a.mpp?.x).toBeCloseTo(0.25, 6);
    expect(a.levels.length).toBeGreaterThan(1);
    const b = await open(inch);
    expect(b.mppSource).toBe('tiff-resolution');
    expect(b.mpp?.x).toBeCloseTo(0.5, 6);
  });
});

describe('readRegion', () => {
  it('sharp and OpenSlide return identical pixels on the same Aperio file, including over the edge', async () => {
    const a = await open(CMU, { backend: 'sharp' });
    const b = await open(CMU, { backend: 'openslide' });
    for (const [x, y, w, h] of [
      [0, 0, 256, 256],
      [1000, 1500, 300, 200],
      [2100, 2900, 256, 256], // hangs over the bottom-right corner
      [-50, -50, 100, 100], // hangs over the top-left corner
    ] as const) {
      const ra = await a.readRegion(0, x, y, w, h);
      const rb = await b.readRegion(0, x, y, w, h);
      expect([ra.width, ra.height, ra.data.length]).toEqual([w, h, w * h * 3]);
      expect(diff(ra.data, rb.data).max).toBe(0);
    }
  });

  it('both backends agree on every level of a generic pyramid', async () => {
    const a = await open(BOXES, { backend: 'sharp' });
    const b = await open(BOXES, { backend: 'openslide' });
    for (let level = 0; level < a.levels.length; level++) {
      const lvl = a.levels[level]!;
      // (0, 0): OpenSlide interpolates when x / downsample is fractional, libvips does not.
      const ra = await a.readRegion(level, 0, 0, lvl.width, lvl.height);
      const rb = await b.readRegion(level, 0, 0, lvl.width, lvl.height);
      expect(diff(ra.data, rb.data).max).toBe(0);
    }
  });

  it('reads known pixels: glass is near white, tissue is stained (CMU-1)', async () => {
    const s = await open(CMU);
    const glass = await s.readRegion(0, 100, 100, 16, 16); // top-left corner is empty glass
    const tissue = await s.readRegion(0, 1100, 2600, 16, 16); // lower centre is dense tissue
    const mean = (d: Buffer): number => d.reduce((acc, v) => acc + v, 0) / d.length;
    expect(mean(glass.data)).toBeGreaterThan(225);
    expect(mean(tissue.data)).toBeLessThan(200);
  });

  it('pixels entirely off the slide are white', async () => {
    const s = await open(BOXES);
    const r = await s.readRegion(0, 5000, 5000, 8, 8);
    expect(r.data.every((v) => v === 255)).toBe(true);
  });

  it('a slide smaller than one tile (16x16 Aperio) reads whole and padded', async () => {
    const s = await open(TINY);
    const r = await s.readRegion(0, 0, 0, 32, 32);
    expect(r.data.length).toBe(32 * 32 * 3);
    expect(r.data.subarray(0, 16 * 3).some((v) => v !== 255)).toBe(true); // slide content in the first row
    expect(r.data.subarray(31 * 32 * 3).every((v) => v === 255)).toBe(true); // padding in the last row
  });

  it('NDPI levels are consistent: level 1 equals a 2x box average of level 0', async () => {
    const s = await open(NDPI);
    const l0 = await s.readRegion(0, 1024, 1024, 256, 256);
    const l1 = await s.readRegion(1, 1024, 1024, 128, 128);
    const down = await sharp(l0.data, { raw: { width: 256, height: 256, channels: 3 } }).resize(128, 128, { kernel: 'linear' }).raw().toBuffer();
    // The scanner's own downsample is not our box filter; they agree on average, not per pixel.
    expect(diff(down, l1.data).mean).toBeLessThan(6);
  });
});
