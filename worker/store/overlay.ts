/**
 * overlay.png: the heatmap blended over a slide thumbnail, for a quick look without the viewer.
 * Cells are scaled to the thumbnail by nearest neighbour (so each cell stays a crisp square);
 * cells without a score (NaN: no tissue) and thumbnail pixels outside the grid show the
 * thumbnail unchanged.
 */
import sharp from 'sharp';
import type { RgbImage } from '../slide/slide-source.js';
import { colormapLut, colourRange, lutIndex, type ColormapName, type ColourRange } from './colormap.js';
import { StoreArgumentError } from './errors.js';

export interface OverlayOptions {
  /** The whole slide, downsampled; the grid's cell (0, 0) starts at its top-left corner. */
  thumbnail: RgbImage;
  /** rows x cols, row-major; NaN = not scored. */
  heatmap: Float32Array;
  rows: number;
  cols: number;
  min: number;
  max: number;
  threshold: number;
  /** Weight of the colour over the thumbnail, 0..1. */
  opacity?: number;
  colormap?: ColormapName;
  range?: ColourRange;
  /**
   * Extent of the grid as a fraction of the thumbnail's, per axis: cols x cellSize / slide width.
   * Above 1 when the last cells hang over the slide's edge. Default 1 (grid fills the thumbnail).
   */
  coverage?: { width: number; height: number };
}

export const OVERLAY_DEFAULTS = {
  opacity: 0.5,
  colormap: 'inferno',
  range: 'minmax',
  coverage: { width: 1, height: 1 },
} as const satisfies Partial<OverlayOptions>;

/** For each output pixel along one axis, the cell it falls in, or -1 beyond the grid. */
function cellIndex(pixels: number, cells: number, coverage: number): Int32Array {
  const out = new Int32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    // Pixel centres, so a thumbnail exactly `cells` wide maps one pixel to one cell.
    const c = Math.floor(((p + 0.5) / pixels / coverage) * cells);
    out[p] = c < cells ? c : -1;
  }
  return out;
}

export async function renderOverlay(options: OverlayOptions): Promise<Buffer> {
  const o = { ...OVERLAY_DEFAULTS, ...options };
  const { thumbnail, heatmap, rows, cols } = o;
  const { width, height } = thumbnail;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new StoreArgumentError(`overlay: thumbnail size ${width}x${height} is not positive`);
  if (thumbnail.data.length !== width * height * 3) throw new StoreArgumentError(`overlay: thumbnail data has ${thumbnail.data.length} bytes, expected ${width}x${height}x3 (RGB)`);
  if (heatmap.length !== rows * cols) throw new StoreArgumentError(`overlay: heatmap has ${heatmap.length} cells, expected rows x cols = ${rows} x ${cols}`);
  if (!(o.opacity >= 0 && o.opacity <= 1)) throw new StoreArgumentError(`overlay: opacity must be in [0, 1], got ${o.opacity}`);
  if (!(o.coverage.width > 0 && o.coverage.height > 0)) throw new StoreArgumentError(`overlay: coverage must be positive, got ${JSON.stringify(o.coverage)}`);

  const lut = colormapLut(o.colormap);
  const { lo, hi } = colourRange(o.range, o.min, o.max, o.threshold);
  // One LUT lookup per cell, not per pixel.
  const cellColour = new Int16Array(rows * cols);
  for (let i = 0; i < heatmap.length; i++) {
    const v = heatmap[i] as number;
    cellColour[i] = Number.isFinite(v) ? lutIndex(v, lo, hi) : -1;
  }
  const colOf = cellIndex(width, cols, o.coverage.width);
  const rowOf = cellIndex(height, rows, o.coverage.height);
  const a = o.opacity;
  const out = Buffer.from(thumbnail.data);
  for (let y = 0; y < height; y++) {
    const r = rowOf[y] as number;
    if (r < 0) continue;
    for (let x = 0; x < width; x++) {
      const c = colOf[x] as number;
      if (c < 0) continue;
      const idx = cellColour[r * cols + c] as number;
      if (idx < 0) continue;
      const p = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) out[p + ch] = Math.round((out[p + ch] as number) * (1 - a) + (lut[idx * 3 + ch] as number) * a);
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
