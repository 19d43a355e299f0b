/**
 * Deep Zoom geometry, kept pure (no I/O) so the slide tiles, the heatmap tiles and the viewer all
 * agree on one pyramid. Deep Zoom (the format OpenSeadragon reads) halves the image per level down
 * to 1x1: level L of a W x H image is ceil(W / 2^(maxLevel - L)) x ceil(H / 2^(maxLevel - L)) with
 * maxLevel = ceil(log2(max(W, H))), cut into tileSize squares; edge tiles are cropped, and each
 * tile carries `overlap` extra pixels on every side that has a neighbour (the DZI convention).
 */

export interface DeepZoomOptions {
  /** Side of a tile without its overlap, in pixels. */
  tileSize?: number;
  /** Pixels a tile shares with each neighbour. */
  overlap?: number;
}

export const DEEP_ZOOM_DEFAULTS: Readonly<Required<DeepZoomOptions>> = { tileSize: 256, overlap: 0 };

export type DeepZoomFormat = 'jpeg' | 'png' | 'webp';

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface DeepZoomTile {
  readonly level: number;
  readonly col: number;
  readonly row: number;
  /** Level-0 pixels per pixel of this level: 2^(maxLevel - level). */
  readonly downsample: number;
  /** The tile's pixels in its level, overlap included, cropped to the level. */
  readonly rect: Rect;
  /** The same rectangle in level-0 pixels, cropped to the image. */
  readonly level0: Rect;
}

/** A level, column or row outside the pyramid: the client asked for a tile that does not exist. */
export class TileRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Invalid image size, tile size or overlap: a programming or data error, not a client's. */
export class DeepZoomArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

function isIndex(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

export class DeepZoomGeometry {
  readonly width: number;
  readonly height: number;
  readonly tileSize: number;
  readonly overlap: number;
  /** Index of the full-resolution level. */
  readonly maxLevel: number;
  readonly levelCount: number;

  constructor(width: number, height: number, options: DeepZoomOptions = {}) {
    const { tileSize, overlap } = { ...DEEP_ZOOM_DEFAULTS, ...options };
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1 || Math.max(width, height) > 2 ** 40) {
      throw new DeepZoomArgumentError(`image size ${width}x${height} is not a positive integer size`);
    }
    if (!Number.isSafeInteger(tileSize) || tileSize < 1 || tileSize > 8192) throw new DeepZoomArgumentError(`tile size ${tileSize} is not an integer in 1..8192`);
    if (!Number.isSafeInteger(overlap) || overlap < 0 || overlap >= tileSize) throw new DeepZoomArgumentError(`overlap ${overlap} is not an integer in 0..${tileSize - 1}`);
    this.width = width;
    this.height = height;
    this.tileSize = tileSize;
    this.overlap = overlap;
    // ceil(log2(n)) computed exactly on integers (Math.log2 rounds for large n).
    let maxLevel = 0;
    while (2 ** maxLevel < Math.max(width, height)) maxLevel++;
    this.maxLevel = maxLevel;
    this.levelCount = maxLevel + 1;
  }

  hasLevel(level: number): boolean {
    return isIndex(level) && level <= this.maxLevel;
  }

  /** Level-0 pixels per pixel of `level` (a power of two). */
  downsample(level: number): number {
    this.checkLevel(level);
    return 2 ** (this.maxLevel - level);
  }

  levelSize(level: number): { width: number; height: number } {
    const ds = this.downsample(level);
    return { width: Math.ceil(this.width / ds), height: Math.ceil(this.height / ds) };
  }

  /** Columns and rows of tiles at `level`. */
  tileGrid(level: number): { cols: number; rows: number } {
    const { width, height } = this.levelSize(level);
    return { cols: Math.ceil(width / this.tileSize), rows: Math.ceil(height / this.tileSize) };
  }

  /** The tile, or null when level, col or row is outside the pyramid. */
  tile(level: number, col: number, row: number): DeepZoomTile | null {
    if (!this.hasLevel(level) || !isIndex(col) || !isIndex(row)) return null;
    const { cols, rows } = this.tileGrid(level);
    if (col >= cols || row >= rows) return null;
    const ds = 2 ** (this.maxLevel - level);
    const { width: lw, height: lh } = this.levelSize(level);
    const span = (index: number, count: number, size: number): [number, number] => {
      const start = index * this.tileSize - (index > 0 ? this.overlap : 0);
      const end = Math.min(size, (index + 1) * this.tileSize + (index < count - 1 ? this.overlap : 0));
      return [start, end - start];
    };
    const [x, width] = span(col, cols, lw);
    const [y, height] = span(row, rows, lh);
    const x0 = x * ds;
    const y0 = y * ds;
    return {
      level,
      col,
      row,
      downsample: ds,
      rect: { x, y, width, height },
      level0: { x: x0, y: y0, width: Math.min(width * ds, this.width - x0), height: Math.min(height * ds, this.height - y0) },
    };
  }

  /** Like `tile`, but throws TileRangeError naming what is out of range. */
  requireTile(level: number, col: number, row: number): DeepZoomTile {
    const t = this.tile(level, col, row);
    if (t !== null) return t;
    if (!this.hasLevel(level)) throw new TileRangeError(`level ${level} does not exist (the image has levels 0..${this.maxLevel})`);
    const { cols, rows } = this.tileGrid(level);
    throw new TileRangeError(`tile ${col}_${row} does not exist at level ${level} (columns 0..${cols - 1}, rows 0..${rows - 1})`);
  }

  /** The .dzi descriptor. */
  dziXml(format: DeepZoomFormat): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="${this.tileSize}" Overlap="${this.overlap}" Format="${format}">` +
      `<Size Width="${this.width}" Height="${this.height}"/></Image>\n`
    );
  }

  private checkLevel(level: number): void {
    if (!this.hasLevel(level)) throw new TileRangeError(`level ${level} does not exist (the image has levels 0..${this.maxLevel})`);
  }
}
