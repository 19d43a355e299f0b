/**
 * Colouring the heatmap tiles in the browser. A heatmap tile is grey + alpha: grey q (0..255)
 * means score = offset + q * scale, alpha 0 = no tissue. A 256-entry table maps q to RGBA with
 * the same colour ramps (worker/store/colormap.ts) and the same [min, max] normalisation as
 * overlay.png; cells whose score lies below the display threshold get alpha 0. Changing the
 * colour map or the threshold rebuilds the table and recolours the tiles already loaded: no new
 * tile is fetched.
 */
import { colormapLut, lutIndex, type ColormapName } from '../../../worker/store/colormap.js';
import type { HeatmapInfo } from '../../server/api-types.js';

export type Quantisation = Pick<HeatmapInfo, 'offset' | 'scale' | 'min' | 'max'>;

/** The score a grey level stands for. */
export function scoreOf(q: number, h: Pick<HeatmapInfo, 'offset' | 'scale'>): number {
  return h.offset + q * h.scale;
}

/** The smallest grey level whose score is >= `threshold` (0 keeps every cell, 256 none). */
export function thresholdLevel(threshold: number, h: Pick<HeatmapInfo, 'offset' | 'scale'>): number {
  if (!(h.scale > 0)) return threshold <= h.offset ? 0 : 256;
  // A hair of tolerance so a threshold set to exactly a level's score keeps that level.
  const q = Math.ceil((threshold - h.offset) / h.scale - 1e-6);
  return Math.max(0, Math.min(256, q));
}

/** 256 x RGBA: the colour of grey level q, alpha 0 below the threshold level. */
export function colourTable(colormap: ColormapName, thresholdQ: number, h: Quantisation): Uint8ClampedArray {
  const lut = colormapLut(colormap);
  const table = new Uint8ClampedArray(256 * 4);
  for (let q = 0; q < 256; q++) {
    const i = lutIndex(scoreOf(q, h), h.min, h.max);
    table[q * 4] = lut[i * 3] as number;
    table[q * 4 + 1] = lut[i * 3 + 1] as number;
    table[q * 4 + 2] = lut[i * 3 + 2] as number;
    table[q * 4 + 3] = q >= thresholdQ ? 255 : 0;
  }
  return table;
}

/**
 * Recolours RGBA pixels of a decoded grey + alpha tile in place: the grey level is the red
 * channel, the tissue alpha multiplies the table's alpha (0 outside tissue, 255 inside; partial
 * only where a coarse level blends a tissue edge).
 */
export function colourise(rgba: Uint8ClampedArray, table: Uint8ClampedArray): void {
  for (let p = 0; p < rgba.length; p += 4) {
    const alpha = rgba[p + 3] as number;
    if (alpha === 0) continue;
    const t = (rgba[p] as number) * 4;
    rgba[p] = table[t] as number;
    rgba[p + 1] = table[t + 1] as number;
    rgba[p + 2] = table[t + 2] as number;
    rgba[p + 3] = alpha === 255 ? (table[t + 3] as number) : Math.round((alpha * (table[t + 3] as number)) / 255);
  }
}

/** CSS colour of a normalised position 0..1 along a ramp (legends, histogram bars). */
export function rampCss(colormap: ColormapName, t: number): string {
  const lut = colormapLut(colormap);
  const i = Math.max(0, Math.min(255, Math.round(t * 255)));
  return `rgb(${lut[i * 3]}, ${lut[i * 3 + 1]}, ${lut[i * 3 + 2]})`;
}
