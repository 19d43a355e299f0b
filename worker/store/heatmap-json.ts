import { CorruptResultError } from './errors.js';

/**
 * heatmap.json: everything needed to place heatmap.npy on the slide and to know how it was made.
 * Cell (r, c) of the [rows, cols] grid covers level-0 pixels
 *   x in [originX + c * patchSizeLevel0, originX + (c + 1) * patchSizeLevel0), likewise y with r.
 */

export const HEATMAP_FORMAT_VERSION = 1;

export interface HeatmapMeta {
  formatVersion: 1;
  slideId: string;
  slidePath: string;
  /** Level-0 size of the slide. */
  width: number;
  height: number;
  /** Microns per level-0 pixel. */
  mpp: number;
  rows: number;
  cols: number;
  /** Level-0 pixels per cell side (cells are square). */
  patchSizeLevel0: number;
  /** Level-0 pixel of cell (0, 0)'s top-left corner. */
  originX: number;
  originY: number;
  /** Side of the square regions the model saw, in pixels at the model's resolution. */
  regionSize: number;
  model: string;
  scoreMethod: string;
  scoreParams: Readonly<Record<string, unknown>>;
  /** Range of the tissue cells' scores (NaN cells excluded); null when the slide has no tissue. */
  min: number | null;
  max: number | null;
  /**
   * Cells with score >= threshold are anomalous. Infinity (written as null, JSON has no Infinity)
   * when the method could not set one, e.g. too few tissue cells.
   */
  threshold: number;
  /** ISO 8601. */
  createdAt: string;
  flashslideVersion: string;
}

/** min and max of the finite values; null when there are none (a slide without tissue). */
export function scoreRange(heatmap: Float32Array): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const v of heatmap) {
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? { min, max } : null;
}

export function formatHeatmapMeta(meta: HeatmapMeta): string {
  return `${JSON.stringify(meta, null, 2)}\n`;
}

/** Parses heatmap.json; a null threshold comes back as Infinity. Throws on another format version. */
export function parseHeatmapMeta(text: string, path = 'heatmap.json'): HeatmapMeta {
  let raw: Omit<HeatmapMeta, 'threshold'> & { threshold: number | null };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (err) {
    throw new CorruptResultError(path, `not JSON (${(err as Error).message})`, err);
  }
  if (raw.formatVersion !== HEATMAP_FORMAT_VERSION) {
    throw new CorruptResultError(path, `formatVersion ${String(raw.formatVersion)} is not ${HEATMAP_FORMAT_VERSION}, the one this flashslide reads (or upgrade flashslide)`);
  }
  return { ...raw, threshold: raw.threshold ?? Infinity };
}
