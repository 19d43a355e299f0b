/**
 * The exact score of the heatmap cell under a level-0 point, read from the heatmap tiles: the
 * coarsest Deep Zoom level that still has at least one pixel per cell (those levels are
 * nearest-neighbour, so the pixel at a cell's centre is that cell's grey level), fetched tile by
 * tile as the cursor goes and kept decoded (a few dozen tiles). The score is exact within one
 * quantisation step (HeatmapInfo.scale).
 */
import type { HeatmapInfo } from '../../server/api-types.js';
import { dziMaxLevel, tileOf, tileUrl } from './dzi.js';
import { scoreOf } from './heatmap-colour.js';

export interface CellScore {
  row: number;
  col: number;
  /** null: no tissue (not scored). */
  score: number | null;
  /** The grey level read, 0..255. */
  q: number | null;
}

const KEEP = 48;

export class HeatmapProbe {
  readonly level: number;
  private readonly shift: number;
  private readonly tiles = new Map<string, Promise<ImageData | null>>();

  constructor(readonly info: HeatmapInfo) {
    const max = dziMaxLevel(info.dzi);
    const k = Math.max(0, Math.min(max, Math.floor(Math.log2(Math.max(1, info.cellSize)))));
    this.shift = k;
    this.level = max - k;
  }

  /** The grid cell holding a level-0 point, or null outside the grid. */
  cellAt(x: number, y: number): { row: number; col: number } | null {
    const { cellSize, originX, originY, rows, cols } = this.info;
    const col = Math.floor((x - originX) / cellSize);
    const row = Math.floor((y - originY) / cellSize);
    if (!(col >= 0 && col < cols && row >= 0 && row < rows)) return null;
    return { row, col };
  }

  async scoreAt(x: number, y: number): Promise<CellScore | null> {
    const cell = this.cellAt(x, y);
    if (!cell) return null;
    const { cellSize, originX, originY, dzi } = this.info;
    // The cell's centre, then the level pixel holding it (clamped to the level's extent).
    const div = 2 ** this.shift;
    const levelW = Math.ceil(dzi.width / div);
    const levelH = Math.ceil(dzi.height / div);
    const cx = Math.min(dzi.width - 1, originX + (cell.col + 0.5) * cellSize);
    const cy = Math.min(dzi.height - 1, originY + (cell.row + 0.5) * cellSize);
    const px = Math.max(0, Math.min(levelW - 1, Math.floor(cx / div)));
    const py = Math.max(0, Math.min(levelH - 1, Math.floor(cy / div)));
    const t = tileOf(px, py, dzi);
    const data = await this.tile(t.col, t.row);
    if (!data || t.x >= data.width || t.y >= data.height) return { ...cell, score: null, q: null };
    const i = (t.y * data.width + t.x) * 4;
    if ((data.data[i + 3] as number) === 0) return { ...cell, score: null, q: null };
    const q = data.data[i] as number;
    return { ...cell, q, score: scoreOf(q, this.info) };
  }

  private tile(col: number, row: number): Promise<ImageData | null> {
    const key = `${col}_${row}`;
    const hit = this.tiles.get(key);
    if (hit) {
      this.tiles.delete(key);
      this.tiles.set(key, hit);
      return hit;
    }
    const p = decodeTile(tileUrl(this.info.dzi, this.level, col, row));
    this.tiles.set(key, p);
    while (this.tiles.size > KEEP) this.tiles.delete(this.tiles.keys().next().value as string);
    return p;
  }
}

async function decodeTile(url: string): Promise<ImageData | null> {
  try {
    const res = await fetch(url);
    if (!res.ok) return null;
    const bitmap = await createImageBitmap(await res.blob(), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) return null;
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    return ctx.getImageData(0, 0, canvas.width, canvas.height);
  } catch {
    return null;
  }
}
