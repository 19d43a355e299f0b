import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderOverlay } from '../../worker/store/overlay.js';
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

/** A 4 x 6 grid (20 x 20 thumbnail pixels per cell): scores 0..23, cell (1, 2) without tissue. */
function heatmap(): Float32Array {
  const h = Float32Array.from({ length: 24 }, (_, i) => i);
  h[1 * 6 + 2] = Number.NaN;
  return h;
}

describe('overlay', () => {
  it('is a PNG of the thumbnail size that blends the colormap over scored cells only', async () => {
    const thumb = await thumbnail();
    const png = await renderOverlay({ thumbnail: thumb, heatmap: heatmap(), rows: 4, cols: 6, min: 0, max: 23, threshold: 20 });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const out = await decode(png);
    expect([out.width, out.height]).toEqual([120, 80]);
    const lut = colormapLut('inferno');
    for (let y = 0; y < 80; y++) {
      for (let x = 0; x < 120; x++) {
        const cell = Math.floor(y / 20) * 6 + Math.floor(x / 20);
        const p = (y * 120 + x) * 3;
        for (let ch = 0; ch < 3; ch++) {
          const t = thumb.data[p + ch] as number;
          // The cell without tissue shows the thumbnail exactly.
          const expected = cell === 8 ? t : Math.round(t * 0.5 + (lut[lutIndex(cell, 0, 23) * 3 + ch] as number) * 0.5);
          if (out.data[p + ch] !== expected) throw new Error(`pixel (${x}, ${y}) channel ${ch}: ${out.data[p + ch]} != ${expected}`);
        }
      }
    }
  });

  it('leaves the thumbnail outside the grid untouched and honours opacity', async () => {
    const thumb = await thumbnail();
    // The grid covers the left half only; opacity 0 changes nothing anywhere.
    const half = await decode(await renderOverlay({ thumbnail: thumb, heatmap: heatmap(), rows: 4, cols: 6, min: 0, max: 23, threshold: 20, coverage: { width: 0.5, height: 1 }, opacity: 1, colormap: 'viridis' }));
    const lut = colormapLut('viridis');
    for (let y = 0; y < 80; y++) {
      for (let x = 60; x < 120; x++) expect(half.data[(y * 120 + x) * 3]).toBe(thumb.data[(y * 120 + x) * 3]);
    }
    expect([...half.data.subarray(0, 3)]).toEqual([...lut.subarray(0, 3)]);
    const none = await decode(await renderOverlay({ thumbnail: thumb, heatmap: heatmap(), rows: 4, cols: 6, min: 0, max: 23, threshold: 20, opacity: 0 }));
    expect(none.data.equals(thumb.data)).toBe(true);
  });

  it('rejects inconsistent inputs', async () => {
    const thumb = await thumbnail();
    await expect(renderOverlay({ thumbnail: thumb, heatmap: new Float32Array(5), rows: 4, cols: 6, min: 0, max: 1, threshold: 1 })).rejects.toThrow(/expected rows x cols/);
    await expect(renderOverlay({ thumbnail: { ...thumb, width: 121 }, heatmap: heatmap(), rows: 4, cols: 6, min: 0, max: 1, threshold: 1 })).rejects.toThrow(/RGB/);
    await expect(renderOverlay({ thumbnail: thumb, heatmap: heatmap(), rows: 4, cols: 6, min: 0, max: 1, threshold: 1, opacity: 2 })).rejects.toThrow(/opacity/);
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
