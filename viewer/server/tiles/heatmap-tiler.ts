/**
 * The heatmap as Deep Zoom tiles of data, not of a picture: 8-bit grey (the quantised score) +
 * alpha (255 = scored tissue, 0 = no tissue or outside the grid) PNGs of exactly the slide's size
 * and Deep Zoom geometry, so the browser colours them with whatever colormap and threshold the
 * reviewer picks and the two pyramids align pixel for pixel.
 *
 * Where a cell covers at least one output pixel, a pixel takes the cell under its centre (crisp
 * squares). Coarser, a pixel takes the maximum of the cells under it, so a small hot spot never
 * vanishes when zoomed out. Those coarse levels come from a max-pyramid built once per level,
 * lazily: the finest such level from the quantised grid (separably: rows, then columns), each
 * coarser one by 2x2 max-pooling the one below, which is exact because Deep Zoom levels nest
 * dyadically in level-0 pixels. Quantising first is harmless: rounding is monotonic, so the max
 * of the quantised scores is the quantised max.
 */
import sharp from 'sharp';
import type { HeatmapMeta } from '../../../worker/store/heatmap-json.js';
import { scoreRange } from '../../../worker/store/heatmap-json.js';
import { DeepZoomGeometry, type DeepZoomOptions, type DeepZoomTile } from './deep-zoom.js';

/** What the tiler needs from heatmap.json. */
export type HeatmapGeometry = Pick<HeatmapMeta, 'width' | 'height' | 'rows' | 'cols' | 'patchSizeLevel0' | 'originX' | 'originY' | 'min' | 'max' | 'threshold'>;

/** score = offset + q * scale for a grey value q in 0..255. */
export interface Quantisation {
  readonly offset: number;
  readonly scale: number;
}

export interface HeatmapTilerOptions extends DeepZoomOptions {
  /** zlib level of the PNGs (0..9): the tiles are small and flat, so a low level costs little size. */
  pngCompression?: number;
  histogramBins?: number;
}

export const HEATMAP_TILER_DEFAULTS: Readonly<Required<HeatmapTilerOptions>> = {
  tileSize: 256,
  overlap: 0,
  pngCompression: 6,
  histogramBins: 64,
};

/** The grid does not match its metadata. */
export class HeatmapDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No pixel / no tissue in a quantised raster. */
const NONE = -1;

export function heatmapQuantisation(min: number | null, max: number | null): Quantisation {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) {
    return { offset: min !== null && Number.isFinite(min) ? min : 0, scale: 1 };
  }
  return { offset: min, scale: (max - min) / 255 };
}

/** Counts of the finite scores in `bins` equal-width bins from min to max (values outside are clamped into the end bins). */
export function heatmapHistogram(grid: Float32Array, min: number, max: number, bins = HEATMAP_TILER_DEFAULTS.histogramBins): number[] {
  const counts = new Array<number>(bins).fill(0);
  const k = max > min ? bins / (max - min) : 0;
  for (let i = 0; i < grid.length; i++) {
    const v = grid[i] as number;
    if (!Number.isFinite(v)) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor((v - min) * k)));
    counts[b] = (counts[b] as number) + 1;
  }
  return counts;
}

/** Grey + alpha pixels of one tile, before encoding. */
export interface GreyAlphaImage {
  /** 2 bytes per pixel (grey, alpha), row-major. */
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

export class HeatmapTiler {
  readonly geometry: DeepZoomGeometry;
  readonly quantisation: Quantisation;
  readonly min: number | null;
  readonly max: number | null;
  private readonly options: Required<HeatmapTilerOptions>;
  private qGrid: Int16Array | null = null;
  private hist: number[] | null = null;
  /** Max-pooled rasters of the coarse levels (one value per level pixel, NONE = no tissue). */
  private readonly maxLevels = new Map<number, Int16Array>();

  constructor(
    private readonly grid: Float32Array,
    readonly meta: HeatmapGeometry,
    options: HeatmapTilerOptions = {},
  ) {
    this.options = { ...HEATMAP_TILER_DEFAULTS, ...options };
    const { rows, cols, patchSizeLevel0 } = meta;
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || grid.length !== rows * cols) {
      throw new HeatmapDataError(`heatmap grid has ${grid.length} values, its metadata says ${rows} x ${cols}`);
    }
    if (!(patchSizeLevel0 > 0) || !Number.isFinite(meta.originX) || !Number.isFinite(meta.originY)) {
      throw new HeatmapDataError(`heatmap cell size ${patchSizeLevel0} or origin (${meta.originX}, ${meta.originY}) is not usable`);
    }
    this.geometry = new DeepZoomGeometry(meta.width, meta.height, { tileSize: this.options.tileSize, overlap: this.options.overlap });
    const range = meta.min !== null && meta.max !== null ? { min: meta.min, max: meta.max } : scoreRange(grid);
    this.min = range?.min ?? null;
    this.max = range?.max ?? null;
    this.quantisation = heatmapQuantisation(this.min, this.max);
  }

  /** 64 (histogramBins) equal-width bins from min to max of the scored cells; all zero without tissue. */
  histogram(): number[] {
    if (this.hist === null) {
      this.hist =
        this.min === null || this.max === null
          ? new Array<number>(this.options.histogramBins).fill(0)
          : heatmapHistogram(this.grid, this.min, this.max, this.options.histogramBins);
    }
    return this.hist;
  }

  /** Whether `level` draws cells nearest-neighbour (a cell covers >= 1 pixel) rather than by max. */
  isNearestLevel(level: number): boolean {
    return this.meta.patchSizeLevel0 >= this.geometry.downsample(level);
  }

  /** The tile's grey + alpha pixels; null when the tile is outside the pyramid. */
  tilePixels(level: number, col: number, row: number): GreyAlphaImage | null {
    const tile = this.geometry.tile(level, col, row);
    if (tile === null) return null;
    return this.isNearestLevel(level) ? this.nearestTile(tile) : this.maxTile(tile);
  }

  /** The tile as a grey + alpha PNG; null when the tile is outside the pyramid. */
  async renderTile(level: number, col: number, row: number): Promise<Buffer | null> {
    const img = this.tilePixels(level, col, row);
    if (img === null) return null;
    // b-w: without it sharp writes RGBA (a two-band raw input is taken for sRGB + alpha).
    return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 2 } })
      .toColourspace('b-w')
      .png({ compressionLevel: this.options.pngCompression, adaptiveFiltering: false })
      .toBuffer();
  }

  private quantised(): Int16Array {
    if (this.qGrid !== null) return this.qGrid;
    const { offset, scale } = this.quantisation;
    const q = new Int16Array(this.grid.length);
    for (let i = 0; i < q.length; i++) {
      const v = this.grid[i] as number;
      q[i] = Number.isFinite(v) ? Math.min(255, Math.max(0, Math.round((v - offset) / scale))) : NONE;
    }
    this.qGrid = q;
    return q;
  }

  private nearestTile(tile: DeepZoomTile): GreyAlphaImage {
    const { rows, cols, patchSizeLevel0: cell, originX, originY } = this.meta;
    const q = this.quantised();
    const { x, y, width, height } = tile.rect;
    const ds = tile.downsample;
    const colOf = new Int32Array(width);
    for (let i = 0; i < width; i++) {
      const c = Math.floor(((x + i + 0.5) * ds - originX) / cell);
      colOf[i] = c >= 0 && c < cols ? c : -1;
    }
    const out = Buffer.alloc(width * height * 2);
    for (let j = 0; j < height; j++) {
      const r = Math.floor(((y + j + 0.5) * ds - originY) / cell);
      if (r < 0 || r >= rows) continue;
      const base = r * cols;
      let o = j * width * 2;
      for (let i = 0; i < width; i++, o += 2) {
        const c = colOf[i] as number;
        if (c < 0) continue;
        const v = q[base + c] as number;
        if (v === NONE) continue;
        out[o] = v;
        out[o + 1] = 255;
      }
    }
    return { data: out, width, height };
  }

  private maxTile(tile: DeepZoomTile): GreyAlphaImage {
    const raster = this.maxLevel(tile.level);
    const lw = this.geometry.levelSize(tile.level).width;
    const { x, y, width, height } = tile.rect;
    const out = Buffer.alloc(width * height * 2);
    for (let j = 0; j < height; j++) {
      let s = (y + j) * lw + x;
      let o = j * width * 2;
      for (let i = 0; i < width; i++, s++, o += 2) {
        const v = raster[s] as number;
        if (v === NONE) continue;
        out[o] = v;
        out[o + 1] = 255;
      }
    }
    return { data: out, width, height };
  }

  /** The max raster of a coarse level, building it (and the coarse levels finer than it) on first use. */
  private maxLevel(level: number): Int16Array {
    const hit = this.maxLevels.get(level);
    if (hit !== undefined) return hit;
    // The finest coarse level comes from the grid; each coarser one pools the one below.
    let finest = level;
    while (finest < this.geometry.maxLevel && !this.isNearestLevel(finest + 1)) finest++;
    let raster = this.maxLevels.get(finest) ?? this.maxFromGrid(finest);
    this.maxLevels.set(finest, raster);
    for (let l = finest - 1; l >= level; l--) {
      raster = this.maxLevels.get(l) ?? this.pool(raster, l + 1);
      this.maxLevels.set(l, raster);
    }
    return raster;
  }

  /** Exact per-pixel max over the cells each pixel's level-0 footprint (clipped to the image) touches. */
  private maxFromGrid(level: number): Int16Array {
    const { rows, cols, patchSizeLevel0: cell, originX, originY, width: W, height: H } = this.meta;
    const q = this.quantised();
    const ds = this.geometry.downsample(level);
    const { width: lw, height: lh } = this.geometry.levelSize(level);
    // Cell ranges [first, last] under each output column and row; last < first: none.
    const ranges = (n: number, origin: number, size: number, count: number): Int32Array => {
      const r = new Int32Array(n * 2);
      for (let p = 0; p < n; p++) {
        const a = p * ds;
        const b = Math.min((p + 1) * ds, size);
        r[2 * p] = Math.max(0, Math.floor((a - origin) / cell));
        r[2 * p + 1] = Math.min(count - 1, Math.ceil((b - origin) / cell) - 1);
      }
      return r;
    };
    const cr = ranges(lw, originX, W, cols);
    const rr = ranges(lh, originY, H, rows);
    // Pass 1: for every grid row, the max over each output column's cells.
    const tmp = new Int16Array(rows * lw).fill(NONE);
    for (let r = 0; r < rows; r++) {
      const g = r * cols;
      const t = r * lw;
      for (let p = 0; p < lw; p++) {
        let m = NONE;
        const last = cr[2 * p + 1] as number;
        for (let c = cr[2 * p] as number; c <= last; c++) {
          const v = q[g + c] as number;
          if (v > m) m = v;
        }
        tmp[t + p] = m;
      }
    }
    // Pass 2: for every output row, the max over its grid rows.
    const out = new Int16Array(lw * lh).fill(NONE);
    for (let p = 0; p < lh; p++) {
      const last = rr[2 * p + 1] as number;
      const o = p * lw;
      for (let r = rr[2 * p] as number; r <= last; r++) {
        const t = r * lw;
        for (let i = 0; i < lw; i++) {
          const v = tmp[t + i] as number;
          if (v > (out[o + i] as number)) out[o + i] = v;
        }
      }
    }
    return out;
  }

  /** 2x2 max of the raster of `fineLevel`, the size of the level above it. */
  private pool(fine: Int16Array, fineLevel: number): Int16Array {
    const { width: fw, height: fh } = this.geometry.levelSize(fineLevel);
    const { width: w, height: h } = this.geometry.levelSize(fineLevel - 1);
    const out = new Int16Array(w * h).fill(NONE);
    for (let y = 0; y < fh; y++) {
      const o = (y >> 1) * w;
      const f = y * fw;
      for (let x = 0; x < fw; x++) {
        const v = fine[f + x] as number;
        const k = o + (x >> 1);
        if (v > (out[k] as number)) out[k] = v;
      }
    }
    return out;
  }
}
