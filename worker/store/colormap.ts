/**
 * Perceptual colormaps as 256-entry RGB tables, interpolated from a few control points sampled
 * along matplotlib's inferno and viridis ramps (lightness rises monotonically, so a brighter
 * colour always means a higher score, also in grey-scale print and for colour-blind readers).
 * 'jet' (the rainbow ramp many readers are used to) is there for the review app only: its
 * lightness is not monotonic, so it is not among COLORMAPS, the ramps for written products.
 */

export type PerceptualColormapName = 'inferno' | 'viridis';
export type ColormapName = PerceptualColormapName | 'jet';

/** The perceptual ramps (lightness rises monotonically). */
export const COLORMAPS: readonly PerceptualColormapName[] = ['inferno', 'viridis'];

/** Every ramp colormapLut knows, the perceptual ones first. */
export const ALL_COLORMAPS: readonly ColormapName[] = [...COLORMAPS, 'jet'];

type Rgb = readonly [number, number, number];

/** Evenly spaced control points from 0 to 1. */
const CONTROL_POINTS: Record<ColormapName, readonly Rgb[]> = {
  inferno: [
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
  ],
  viridis: [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
  ],
  // matplotlib's jet sampled at the same nine evenly spaced points.
  jet: [
    [0, 0, 128],
    [0, 0, 255],
    [0, 128, 255],
    [21, 255, 226],
    [123, 255, 123],
    [226, 255, 21],
    [255, 151, 0],
    [255, 33, 0],
    [128, 0, 0],
  ],
};

const cache = new Map<ColormapName, Uint8Array>();

/** 256 x 3 bytes: entry i is the colour of normalised value i / 255. */
export function colormapLut(name: ColormapName): Uint8Array {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const points = CONTROL_POINTS[name];
  if (points === undefined) throw new RangeError(`unknown colormap '${String(name)}'; choose one of ${ALL_COLORMAPS.join(', ')}`);
  const lut = new Uint8Array(256 * 3);
  const segments = points.length - 1;
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * segments;
    const s = Math.min(segments - 1, Math.floor(pos));
    const t = pos - s;
    const a = points[s] as Rgb;
    const b = points[s + 1] as Rgb;
    for (let ch = 0; ch < 3; ch++) lut[i * 3 + ch] = Math.round((a[ch] as number) * (1 - t) + (b[ch] as number) * t);
  }
  cache.set(name, lut);
  return lut;
}

/**
 * Index into a LUT for `value` normalised to [lo, hi] and clamped. A degenerate range (every score
 * equal) maps to the middle rather than dividing by zero.
 */
export function lutIndex(value: number, lo: number, hi: number): number {
  if (!(hi > lo)) return 128;
  const t = (value - lo) / (hi - lo);
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

export type ColourRange = 'minmax' | 'threshold';

/**
 * The score interval the colour ramp spans. 'minmax': the slide's own [min, max], most contrast.
 * 'threshold': [min, 2 x threshold], so the threshold sits at a similar colour on every slide and a
 * slide without anomalies does not light up; falls back to 'minmax' without a finite threshold.
 */
export function colourRange(mode: ColourRange, min: number, max: number, threshold: number): { lo: number; hi: number } {
  if (mode === 'threshold' && Number.isFinite(threshold) && 2 * threshold > min) return { lo: min, hi: 2 * threshold };
  return { lo: min, hi: max };
}
