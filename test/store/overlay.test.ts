import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { overlayLayout, renderOverlay } from '../../worker/store/overlay.js';
import type { HeatmapMeta } from '../../worker/store/heatmap-json.js';
import type { RankedRegion } from '../../worker/store/result-types.js';
import { colormapLut, colourRange, lutIndex, COLORMAPS } from '../../worker/store/colormap.js';
import type { RgbImage } from '../../worker/slide/slide-source.js';
import { KIDNEY } from '../helpers.js';

/** A real H&E thumbnail: the kidney strip fixture, downsampled to 120 x 80. */
async function thumbnail(): Promise<RgbImage> {
  const { data, info } = await sharp(KIDNEY).resize(120, 80, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function decode(png: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data, width: info.width, height: info.height };
}


/** The heatmap meta of a slide `w` x `h` px covered by a rows x cols grid of `cell` px cells. */
function meta(rows: number, cols: number, cell: number, w: number, h: number, min: number | null, max: number | null, threshold: number): HeatmapMeta {
  return {
    formatVersion: 1, slideId: 'x', slidePath: '/x.svs', width: w, height: h, mpp: 0.5, rows, cols, patchSizeLevel0: cell, originX: 0, originY: 0,
    regionSize: 1024, model: 'm', scoreMethod: 'self', scoreParams: {}, min, max, threshold, createdAt: '', flashslideVersion: '0',
  };
}

/** A square region of cells (r0..r1, c0..c1) as a ranked region, level-0 pixels. */
function square(rank: number, r0: number, c0: number, r1: number, c1: number, cell: number): RankedRegion {
  const [x0, y0, x1, y1] = [c0 * cell, r0 * cell, (c1 + 1) * cell, (r1 + 1) * cell];
  return {
    id: `r${rank}`, rank, name: `Anomaly ${rank}`, scoreMax: 1, scoreMean: 1, areaUm2: 1, cells: 1,
    bbox: [x0, y0, x1 - x0, y1 - y0], centroid: [(x0 + x1) / 2, (y0 + y1) / 2],
    outline: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
  };
}

const at = (img: RgbImage, x: number, y: number): [number, number, number] => {
  const p = (Math.round(y) * img.width + Math.round(x)) * 3;
  return [img.data[p] as number, img.data[p + 1] as number, img.data[p + 2] as number];
};
const dist = (a: readonly number[], b: readonly number[]): number => Math.hypot((a[0] as number) - (b[0] as number), (a[1] as number) - (b[1] as number), (a[2] as number) - (b[2] as number));

describe('overlay.png, a figure', () => {
  // A 12000 x 8000 px slide, 12 x 8 cells of 1000 px; the kidney strip as its picture.
  const W = 12000;
  const H = 8000;
  const grid = (fill: (r: number, c: number) => number): Float32Array => Float32Array.from({ length: 96 }, (_, i) => fill(Math.floor(i / 12), i % 12));

  it("is 2000 px on the slide image's long side, with a panel below", async () => {
    const layout = overlayLayout(W, H, 2000);
    const png = await renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: await thumbnail(), heatmap: { grid: grid(() => 1), meta: meta(8, 12, 1000, W, H, 0, 2, 1.5) }, tissuePng: null, regions: [], title: 'slide.svs', subtitle: 'model' });
    const out = await decode(png);
    expect(layout.image).toMatchObject({ width: 2000, height: 1333 });
    expect([out.width, out.height]).toEqual([layout.canvas.width, layout.canvas.height]);
    expect(out.height).toBeGreaterThan(1333 + 150);
    expect(overlayLayout(W, H, 3000).image.width).toBe(3000);
  });

  it('colours cells at or above the threshold strongly and those below faintly (no glow without anomalies)', async () => {
    // Uniform grey glass, so both halves start from the same colour.
    const thumb: RgbImage = { data: Buffer.alloc(1200 * 800 * 3, 200), width: 1200, height: 800 };
    // Left half 2.9 (just below the threshold 2.95), right half 3.0 (above): nearly the same colour,
    // so the distance to the plain picture measures the blend's strength.
    const g = grid((_, c) => (c < 6 ? 2.9 : 3));
    const out = await decode(await renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: thumb, heatmap: { grid: g, meta: meta(8, 12, 1000, W, H, 0, 3, 2.95) }, tissuePng: null, regions: [], title: 't', subtitle: 's' }));
    const plain = await decode(await renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: thumb, heatmap: { grid: grid(() => Number.NaN), meta: meta(8, 12, 1000, W, H, null, null, Infinity) }, tissuePng: null, regions: [], title: 't', subtitle: 's' }));
    let below = 0;
    let above = 0;
    for (let y = 100; y < 1200; y += 37) {
      for (let x = 50; x < 950; x += 41) below += dist(at(out, x, y), at(plain, x, y));
      for (let x = 1050; x < 1950; x += 41) above += dist(at(out, x, y), at(plain, x, y));
    }
    expect(above).toBeGreaterThan(1.6 * below);
    expect(below).toBeGreaterThan(0);
  });

  it("has a colour bar of the viewer's ramp from min to max, with the threshold marked", async () => {
    const layout = overlayLayout(W, H, 2000);
    const out = await decode(await renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: await thumbnail(), heatmap: { grid: grid((r) => r), meta: meta(8, 12, 1000, W, H, 0, 7, 5.6) }, tissuePng: null, regions: [], title: 't', subtitle: 's' }));
    const lut = colormapLut('inferno');
    const { x, y, width, height } = layout.bar;
    for (const t of [0.1, 0.5, 0.7]) {
      const k = Math.round(t * 255);
      expect(dist(at(out, x + t * width, y + height / 2), [lut[k * 3] as number, lut[k * 3 + 1] as number, lut[k * 3 + 2] as number])).toBeLessThan(30);
    }
    // The threshold marker: a dark bar across the ramp at 5.6 / 7 = 80 % of its width, where the ramp is bright.
    const marker = at(out, x + 0.8 * width, y + height / 2);
    expect(Math.max(...marker)).toBeLessThan(60);
    expect(Math.max(...at(out, x + 0.9 * width, y + height / 2))).toBeGreaterThan(200);
  });

  it('outlines and numbers the regions where they are', async () => {
    const layout = overlayLayout(W, H, 2000);
    const scale = layout.image.width / W;
    const regions = [square(1, 2, 2, 4, 4, 1000), square(2, 5, 8, 6, 10, 1000)];
    const out = await decode(await renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: await thumbnail(), heatmap: { grid: grid(() => 1), meta: meta(8, 12, 1000, W, H, 0, 2, 1.5) }, tissuePng: null, regions, title: 't', subtitle: 's' }));
    const cyan = [26, 209, 255];
    for (const r of regions) {
      const [bx, by, bw, bh] = r.bbox;
      // The middle of the left edge of the outline is the outline colour.
      expect(dist(at(out, layout.image.left + bx * scale, (by + bh / 2) * scale), cyan)).toBeLessThan(60);
      // Inside, away from the line: not the outline colour.
      expect(dist(at(out, layout.image.left + (bx + bw / 2) * scale, (by + bh / 2) * scale), cyan)).toBeGreaterThan(60);
    }
    // The label of region 1 (top-right corner): a dark disc with white text in it.
    const [bx, by, bw] = (regions[0] as RankedRegion).bbox;
    const cx = layout.image.left + (bx + bw) * scale + layout.unit * 4.2 * 0.6;
    const cy = by * scale - layout.unit * 4.2 * 0.6;
    let dark = 0;
    let white = 0;
    for (let dy = -12; dy <= 12; dy += 2) {
      for (let dx = -12; dx <= 12; dx += 2) {
        const v = at(out, cx + dx, cy + dy);
        if (Math.max(...v) < 50) dark++;
        if (Math.min(...v) > 220) white++;
      }
    }
    expect(dark).toBeGreaterThan(20);
    expect(white).toBeGreaterThan(3);
  });

  it('rejects inconsistent inputs', async () => {
    await expect(renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: null, heatmap: { grid: new Float32Array(5), meta: meta(8, 12, 1000, W, H, 0, 1, 1) }, tissuePng: null, regions: [], title: 't', subtitle: 's' })).rejects.toThrow(/expected rows x cols/);
    await expect(renderOverlay({ slideWidth: W, slideHeight: H, thumbnail: null, heatmap: { grid: grid(() => 1), meta: meta(8, 12, 1000, W, H, 0, 1, 1) }, tissuePng: null, regions: [], title: 't', subtitle: 's' }, { longSide: 50 })).rejects.toThrow(/long side/);
  });
});

describe('colormaps', () => {
  it('are 256-entry ramps from dark to light', () => {
    for (const name of COLORMAPS) {
      const lut = colormapLut(name);
      expect(lut.length).toBe(768);
      let previous = -1;
      for (let i = 0; i < 256; i++) {
        const luma = 0.299 * (lut[i * 3] as number) + 0.587 * (lut[i * 3 + 1] as number) + 0.114 * (lut[i * 3 + 2] as number);
        expect(luma).toBeGreaterThanOrEqual(previous - 0.5);
        previous = luma;
      }
    }
    expect([...colormapLut('inferno').subarray(0, 3)]).toEqual([0, 0, 4]);
    expect([...colormapLut('viridis').subarray(765)]).toEqual([253, 231, 37]);
  });

  it('normalise by [min, max] or [min, 2 x threshold], clamped, without dividing by zero', () => {
    expect(lutIndex(5, 0, 10)).toBe(128);
    expect(lutIndex(-3, 0, 10)).toBe(0);
    expect(lutIndex(99, 0, 10)).toBe(255);
    expect(lutIndex(4, 4, 4)).toBe(128);
    expect(colourRange('threshold', 1, 50, 6)).toEqual({ lo: 1, hi: 12 });
    expect(colourRange('threshold', 1, 50, Infinity)).toEqual({ lo: 1, hi: 50 });
    expect(colourRange('minmax', 1, 50, 6)).toEqual({ lo: 1, hi: 50 });
  });
});
