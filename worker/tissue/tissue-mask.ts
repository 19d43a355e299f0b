/**
 * Tissue vs background on a slide overview.
 *
 * Brightfield (H&E, IHC): glass is bright and grey, stained tissue is coloured, so Otsu's threshold
 * on HSV saturation separates them. The threshold is clamped to a band because Otsu needs two modes:
 * on a slide that is almost all glass it would split sensor noise, and on one that is almost all
 * tissue it would split pale from dark tissue. Near-black pixels (scanner borders, folds of
 * coverslip edge) and green/cyan ink (pen marks) are excluded before thresholding.
 *
 * Fluorescence (dark background, e.g. DAPI): signal is bright, so Otsu runs on brightness instead.
 * The mode is picked from the overview's median brightness.
 *
 * Afterwards a closing joins nuclei and loose stroma into tissue (wider for fluorescence, where
 * only nuclei light up), an opening and a minimum component area drop dust and debris.
 */
import type { RgbImage } from '../slide/slide-source.js';
import { tissueKernels, type TissueMaskParams } from '../native/tissue-kernels.js';
import { close, open, removeSmallComponents } from './morphology.js';

export interface TissueDetectionOptions {
  /** Saturation threshold band (0..1) that Otsu's choice is clamped to. */
  minSaturation: number;
  maxSaturation: number;
  /** Pixels darker than this (max channel, 0..1) are borders or debris, not tissue (brightfield). */
  maxDarkness: number;
  /** Brightness floor (0..1) for fluorescence signal. */
  minFluorescence: number;
  /** Closing/opening radius in overview pixels. */
  morphologyRadius: number;
  /**
   * Closing radius for fluorescence: a nuclear stain lights nuclei only, so tissue is where nuclei
   * are dense, and the gaps between them (tens of µm in stroma) must be bridged.
   */
  fluorescenceClosingRadius: number;
  /** Smallest tissue piece kept, as a fraction of the overview area. */
  minComponentFraction: number;
  /** 'auto' picks fluorescence when the background is dark. */
  mode: 'auto' | 'brightfield' | 'fluorescence';
}

export const DEFAULT_TISSUE_OPTIONS: Readonly<TissueDetectionOptions> = {
  minSaturation: 0.05,
  maxSaturation: 0.15,
  maxDarkness: 0.12,
  minFluorescence: 0.08,
  morphologyRadius: 2,
  fluorescenceClosingRadius: 6,
  minComponentFraction: 2e-5,
  mode: 'auto',
};

export interface TissueDetection {
  readonly width: number;
  readonly height: number;
  /** 1 = tissue, 0 = background; row-major, width * height. */
  readonly mask: Uint8Array;
  readonly mode: 'brightfield' | 'fluorescence';
  /** Threshold used, on the 0..1 scale of the channel it applied to. */
  readonly threshold: number;
  readonly tissueFraction: number;
  readonly components: number;
}

/** Otsu's threshold on a 256-bin histogram: the bin index maximising between-class variance. */
export function otsuThreshold(hist: ArrayLike<number>): number {
  let total = 0;
  let sumAll = 0;
  for (let i = 0; i < 256; i++) {
    total += hist[i] as number;
    sumAll += i * (hist[i] as number);
  }
  if (total === 0) return 0;
  let wB = 0;
  let sumB = 0;
  let best = 0;
  let bestVar = -1;
  for (let t = 0; t < 256; t++) {
    wB += hist[t] as number;
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * (hist[t] as number);
    const mB = sumB / wB;
    const mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) * (mB - mF);
    if (between > bestVar) {
      bestVar = between;
      best = t;
    }
  }
  return best;
}

function isPenInk(r: number, g: number, b: number, mx: number, mn: number): boolean {
  // Green and cyan markers: hue roughly 75..200 degrees with real saturation. H&E never is
  // green-dominant, so this costs no tissue; blue ink overlaps haematoxylin and is left alone.
  if (mx === 0 || (mx - mn) / mx < 0.25) return false;
  return g >= r + 20 && g + 10 >= b;
}

/** Auto mode calls a slide fluorescence when its median brightness is below this fraction. */
const FLUORESCENCE_MEDIAN = 0.3;

/**
 * The options as the integers both implementations use (thresholds on the 0..255 scale, the
 * smallest component in pixels): computed here once, so the native kernel and the JavaScript
 * twin cannot round differently.
 */
export function tissueMaskParams(options: Partial<TissueDetectionOptions>, pixels: number): TissueMaskParams {
  const o = { ...DEFAULT_TISSUE_OPTIONS, ...options };
  return {
    mode: o.mode === 'auto' ? 0 : o.mode === 'brightfield' ? 1 : 2,
    // An integer median m is below x exactly when it is below ceil(x).
    fluorescenceMedian: Math.ceil(FLUORESCENCE_MEDIAN * 255),
    dark: Math.round(o.maxDarkness * 255),
    satMin: Math.round(o.minSaturation * 255),
    satMax: Math.round(o.maxSaturation * 255),
    fluoMin: Math.round(o.minFluorescence * 255),
    radius: o.morphologyRadius,
    fluorescenceClosing: o.fluorescenceClosingRadius,
    minArea: Math.max(4, Math.round(o.minComponentFraction * pixels)),
  };
}

/**
 * detectTissue on the addon's thread pool when the addon has the kernel (tens of milliseconds
 * for a 16 Mpx overview, the event loop free meanwhile), else the JavaScript below: same mask.
 */
export async function detectTissueFast(image: RgbImage, options: Partial<TissueDetectionOptions> = {}): Promise<TissueDetection> {
  const native = tissueKernels();
  if (native === null) return detectTissue(image, options);
  const { data, width: w, height: h } = image;
  const r = await native.detectTissueMask(data, w, h, tissueMaskParams(options, w * h));
  return {
    width: w,
    height: h,
    mask: r.mask,
    mode: r.fluorescence ? 'fluorescence' : 'brightfield',
    threshold: r.threshold / 255,
    tissueFraction: r.count / (w * h),
    components: r.components,
  };
}

/** The JavaScript implementation (and the reference for the native kernel's tests). */
export function detectTissue(image: RgbImage, options: Partial<TissueDetectionOptions> = {}): TissueDetection {
  const { data, width: w, height: h } = image;
  const n = w * h;
  const p = tissueMaskParams(options, n);
  const sat = new Uint8Array(n);
  const val = new Uint8Array(n);
  const eligible = new Uint8Array(n);
  const valHist = new Uint32Array(256);
  for (let i = 0, q = 0; i < n; i++, q += 3) {
    const r = data[q] as number;
    const g = data[q + 1] as number;
    const b = data[q + 2] as number;
    const mx = Math.max(r, g, b);
    const mn = Math.min(r, g, b);
    val[i] = mx;
    sat[i] = mx === 0 ? 0 : Math.round(((mx - mn) * 255) / mx);
    valHist[mx] = (valHist[mx] as number) + 1;
    eligible[i] = isPenInk(r, g, b, mx, mn) ? 0 : 1;
  }

  let median = 0;
  for (let acc = 0; median < 255; median++) {
    acc += valHist[median] as number;
    if (acc >= n / 2) break;
  }
  const mode = p.mode === 0 ? (median < p.fluorescenceMedian ? 'fluorescence' : 'brightfield') : p.mode === 1 ? 'brightfield' : 'fluorescence';

  const mask = new Uint8Array(n);
  let threshold: number;
  if (mode === 'brightfield') {
    const dark = p.dark;
    const hist = new Uint32Array(256);
    for (let i = 0; i < n; i++) {
      if (eligible[i] === 1 && (val[i] as number) > dark) hist[sat[i] as number] = (hist[sat[i] as number] as number) + 1;
    }
    const t = Math.min(p.satMax, Math.max(p.satMin, otsuThreshold(hist)));
    threshold = t / 255;
    for (let i = 0; i < n; i++) mask[i] = eligible[i] === 1 && (val[i] as number) > dark && (sat[i] as number) > t ? 1 : 0;
  } else {
    const t = Math.max(p.fluoMin, otsuThreshold(valHist));
    threshold = t / 255;
    for (let i = 0; i < n; i++) mask[i] = (val[i] as number) > t ? 1 : 0;
  }

  const closing = mode === 'fluorescence' ? Math.max(p.radius, p.fluorescenceClosing) : p.radius;
  const cleaned = open(close(mask, w, h, closing), w, h, Math.max(1, p.radius - 1));
  const components = removeSmallComponents(cleaned, w, h, p.minArea);
  let count = 0;
  for (let i = 0; i < n; i++) count += cleaned[i] as number;
  return { width: w, height: h, mask: cleaned, mode, threshold, tissueFraction: count / n, components };
}
