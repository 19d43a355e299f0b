/**
 * Heatmap pictures, composed with sharp: the overview (slide thumbnail, heatmap, tissue outline)
 * that the PDF report and overlay.png share, and the small heatmap insets beside the PDF's
 * crops. Region outlines, numbers and colour bars are not burnt in here: the PDF draws them as
 * vectors (worker/report/pdf/region-marks.ts), overlay.png as SVG (overlay.ts).
 *
 * Cells at or above the threshold are blended strongly and the rest faintly: on a whole slide
 * the reader's eye must land on the hot spots, not on the ramp's uniform low end.
 */
import sharp from 'sharp';
import type { RgbImage } from '../slide/slide-source.js';
import { thumbnailSize } from '../slide/thumbnail.js';
import { colormapLut, lutIndex, type ColormapName } from './colormap.js';
import type { HeatmapMeta } from './heatmap-json.js';

export interface Heatmap {
  grid: Float32Array;
  meta: HeatmapMeta;
}

/** How scores become colours: the ramp, the interval it spans, and the threshold. */
export interface Colouring {
  lut: Uint8Array;
  lo: number;
  hi: number;
  /** Infinity when the method set none. */
  threshold: number;
}

export const FIGURE_DEFAULTS = {
  /** Long side of the overview raster in pixels (~250 dpi across a page's width). */
  overviewSide: 1400 as number,
  /** Colour weight over the slide of cells at or above the threshold, and below it. */
  opacityHot: 0.68,
  opacityCold: 0.32,
  /** The same without a slide image under the heatmap (nothing to see through to). */
  opacityHotAlone: 1,
  opacityColdAlone: 0.55,
  /**
   * How below-threshold cells fade: 0 = all at opacityCold; k > 0 = opacityCold x t^k, t the
   * cell's place from min (0) to the threshold (1), so the lowest scores leave the slide as it is.
   */
  coldFade: 0 as number,
  /** Tissue outline, a green none of the ramps uses. */
  tissueOutline: [0, 150, 80] as readonly [number, number, number],
  /** Where there is no slide image to draw on. */
  background: 246,
  jpegQuality: 84,
  /** Side of a crop's heatmap inset in pixels. */
  insetSide: 240,
  /** Inset colour of a cell without tissue (not scored). */
  noTissue: 232,
} as const;

export type FigureOptions = { [K in keyof typeof FIGURE_DEFAULTS]?: (typeof FIGURE_DEFAULTS)[K] extends number ? number : (typeof FIGURE_DEFAULTS)[K] };

/** The colouring of a result: the ramp spans the tissue cells' [min, max]; null without tissue. */
export function heatmapColouring(meta: HeatmapMeta, colormap: ColormapName): Colouring | null {
  if (meta.min === null || meta.max === null) return null;
  return { lut: colormapLut(colormap), lo: meta.min, hi: meta.max, threshold: meta.threshold };
}

/** A level-0 rectangle. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * For each of `pixels` output pixels spanning level-0 [from, from + extent), the grid cell it
 * falls in along that axis, or -1 outside the grid. Pixel centres, so a cell is never shifted.
 */
function cellsAlong(pixels: number, from: number, extent: number, origin: number, cellSize: number, cells: number): Int32Array {
  const out = new Int32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    const c = Math.floor((from + ((p + 0.5) / pixels) * extent - origin) / cellSize);
    out[p] = c >= 0 && c < cells ? c : -1;
  }
  return out;
}

/** Per cell: the LUT index of its score, or -1 (no tissue). */
function cellColours(heatmap: Heatmap, colouring: Colouring): Int16Array {
  const out = new Int16Array(heatmap.grid.length);
  for (let i = 0; i < heatmap.grid.length; i++) {
    const v = heatmap.grid[i] as number;
    out[i] = Number.isFinite(v) ? lutIndex(v, colouring.lo, colouring.hi) : -1;
  }
  return out;
}

export interface OverviewInput {
  /** Level-0 size of the slide the heatmap was made on. */
  slideWidth: number;
  slideHeight: number;
  /** The whole slide downsampled, or null when the file could not be read (heatmap on grey). */
  thumbnail: RgbImage | null;
  heatmap: Heatmap | null;
  colouring: Colouring | null;
  /** tissue.png of the result (white = tissue, covering the whole slide), or null. */
  tissuePng: Buffer | null;
}

export interface Raster {
  jpeg: Buffer;
  width: number;
  height: number;
}

/** The overview: slide, heatmap blended by threshold, tissue boundary; as a JPEG. */
export async function renderOverview(input: OverviewInput, options: FigureOptions = {}): Promise<Raster> {
  const o = { ...FIGURE_DEFAULTS, ...options };
  const { data, width, height } = await overviewPixels(input, options);
  const jpeg = await sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality: o.jpegQuality, mozjpeg: false }).toBuffer();
  return { jpeg, width, height };
}

/** The overview as RGB pixels, `overviewSide` on the long side. */
export async function overviewPixels(input: OverviewInput, options: FigureOptions = {}): Promise<RgbImage> {
  const o = { ...FIGURE_DEFAULTS, ...options };
  const { width, height } = thumbnailSize(input.slideWidth, input.slideHeight, o.overviewSide);
  let pixels: Buffer;
  if (input.thumbnail === null) {
    pixels = Buffer.alloc(width * height * 3, o.background);
  } else if (input.thumbnail.width === width && input.thumbnail.height === height) {
    pixels = Buffer.from(input.thumbnail.data);
  } else {
    // A file whose size differs from the analysed one (the report warns): stretch it to the
    // analysed geometry, so the heatmap at least stays where the result put it.
    pixels = await sharp(input.thumbnail.data, { raw: { width: input.thumbnail.width, height: input.thumbnail.height, channels: 3 } })
      .resize(width, height, { fit: 'fill' })
      .raw()
      .toBuffer();
  }

  if (input.heatmap !== null && input.colouring !== null) {
    const alone = input.thumbnail === null;
    const opacity = { hot: alone ? o.opacityHotAlone : o.opacityHot, cold: alone ? o.opacityColdAlone : o.opacityCold, coldFade: o.coldFade };
    blendHeatmap(pixels, width, height, input, input.heatmap, input.colouring, opacity);
  }
  if (input.tissuePng !== null) await drawTissueBoundary(pixels, width, height, input.tissuePng, o.tissueOutline);
  return { data: pixels, width, height };
}

/**
 * Per cell: its colour's weight over the slide (see FIGURE_DEFAULTS.coldFade). Below the
 * threshold the weight is looked up by the cell's ramp index (256 steps: no per-cell power).
 */
function cellOpacities(heatmap: Heatmap, colours: Int16Array, colouring: Colouring, opacity: { hot: number; cold: number; coldFade: number }): Float32Array {
  const { lo, hi, threshold } = colouring;
  const cold = new Float32Array(256).fill(opacity.cold);
  const span = threshold - lo;
  if (opacity.coldFade > 0 && span > 0 && Number.isFinite(span)) {
    for (let k = 0; k < 256; k++) cold[k] = opacity.cold * Math.max(0, Math.min(1, ((k / 255) * (hi - lo)) / span)) ** opacity.coldFade;
  }
  const out = new Float32Array(heatmap.grid.length);
  for (let i = 0; i < out.length; i++) {
    const k = colours[i] as number;
    if (k < 0) continue;
    out[i] = (heatmap.grid[i] as number) >= threshold ? opacity.hot : (cold[k] as number);
  }
  return out;
}

function blendHeatmap(pixels: Buffer, width: number, height: number, input: OverviewInput, heatmap: Heatmap, colouring: Colouring, opacity: { hot: number; cold: number; coldFade: number }): void {
  const m = heatmap.meta;
  const colOf = cellsAlong(width, 0, input.slideWidth, m.originX, m.patchSizeLevel0, m.cols);
  const rowOf = cellsAlong(height, 0, input.slideHeight, m.originY, m.patchSizeLevel0, m.rows);
  const colours = cellColours(heatmap, colouring);
  const alphas = cellOpacities(heatmap, colours, colouring, opacity);
  const { lut } = colouring;
  for (let y = 0; y < height; y++) {
    const r = rowOf[y] as number;
    if (r < 0) continue;
    for (let x = 0; x < width; x++) {
      const c = colOf[x] as number;
      if (c < 0) continue;
      const cell = r * m.cols + c;
      const idx = colours[cell] as number;
      if (idx < 0) continue;
      const a = alphas[cell] as number;
      if (a <= 0) continue;
      const p = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) pixels[p + ch] = Math.round((pixels[p + ch] as number) * (1 - a) + (lut[idx * 3 + ch] as number) * a);
    }
  }
}

/**
 * The tissue mask scaled to the figure (smoothly, then cut at half, so its coarse pixels do not
 * read as stairs) and its boundary painted: every pixel whose tissue state differs from its
 * right or lower neighbour, and that neighbour, widened by one pixel to read at print size.
 */
async function drawTissueBoundary(pixels: Buffer, width: number, height: number, tissuePng: Buffer, colour: readonly [number, number, number]): Promise<void> {
  let mask: Buffer;
  try {
    const { data, info } = await sharp(tissuePng).extractChannel(0).resize(width, height, { fit: 'fill', kernel: 'linear' }).raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1 || info.width !== width || info.height !== height) return;
    mask = data;
  } catch {
    return; // a damaged mask costs the outline, not the report
  }
  const edge = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const t = (mask[i] as number) >= 128;
      if (x + 1 < width && ((mask[i + 1] as number) >= 128) !== t) edge[i] = edge[i + 1] = 1;
      if (y + 1 < height && ((mask[i + width] as number) >= 128) !== t) edge[i] = edge[i + width] = 1;
    }
  }
  for (let i = 0; i < edge.length; i++) {
    const x = i % width;
    const hit = edge[i] === 1 || (x > 0 && edge[i - 1] === 1) || (i >= width && edge[i - width] === 1);
    if (!hit) continue;
    pixels[i * 3] = colour[0];
    pixels[i * 3 + 1] = colour[1];
    pixels[i * 3 + 2] = colour[2];
  }
}

/**
 * The heatmap cells under a level-0 box, colormapped at full strength (the inset is for reading
 * scores, so nothing is faded), `side` pixels wide; as a PNG, whose flat cells compress to little.
 */
export async function renderInset(heatmap: Heatmap, colouring: Colouring, box: Box, options: FigureOptions = {}): Promise<Buffer> {
  const o = { ...FIGURE_DEFAULTS, ...options };
  const side = o.insetSide;
  const h = Math.max(1, Math.round((side * box.height) / box.width));
  const m = heatmap.meta;
  const colOf = cellsAlong(side, box.x, box.width, m.originX, m.patchSizeLevel0, m.cols);
  const rowOf = cellsAlong(h, box.y, box.height, m.originY, m.patchSizeLevel0, m.rows);
  const out = Buffer.alloc(side * h * 3, 255);
  const { lut } = colouring;
  for (let y = 0; y < h; y++) {
    const r = rowOf[y] as number;
    if (r < 0) continue;
    for (let x = 0; x < side; x++) {
      const c = colOf[x] as number;
      if (c < 0) continue;
      const v = heatmap.grid[r * m.cols + c] as number;
      const p = (y * side + x) * 3;
      if (!Number.isFinite(v)) {
        out.fill(o.noTissue, p, p + 3);
        continue;
      }
      const idx = lutIndex(v, colouring.lo, colouring.hi);
      out[p] = lut[idx * 3] as number;
      out[p + 1] = lut[idx * 3 + 1] as number;
      out[p + 2] = lut[idx * 3 + 2] as number;
    }
  }
  return sharp(out, { raw: { width: side, height: h, channels: 3 } }).png({ compressionLevel: 9 }).toBuffer();
}
