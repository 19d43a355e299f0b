/**
 * The addon's tissue detection kernels (native/src/tissue_binding.cc), when this build has them.
 * worker/tissue/tissue-mask.ts and overview.ts keep the JavaScript twins, which give the same
 * bits; tests compare the two on real slides.
 */
import { addonFunctions } from './addon.js';

/** Integer parameters, computed once in JavaScript so that both implementations agree exactly. */
export interface TissueMaskParams {
  /** 0 auto, 1 brightfield, 2 fluorescence. */
  mode: 0 | 1 | 2;
  /** Auto mode picks fluorescence when the median brightness (0..255) is below this. */
  fluorescenceMedian: number;
  dark: number;
  satMin: number;
  satMax: number;
  fluoMin: number;
  radius: number;
  fluorescenceClosing: number;
  minArea: number;
}

export interface NativeTissueMask {
  mask: Uint8Array;
  fluorescence: boolean;
  /** On the 0..255 scale of the channel it applied to. */
  threshold: number;
  components: number;
  count: number;
}

export interface TissueKernels {
  /** Runs on the thread pool: the event loop stays free for the engine's batches. */
  detectTissueMask(rgb: Uint8Array, width: number, height: number, params: TissueMaskParams): Promise<NativeTissueMask>;
  accumulateBins(
    tile: Uint8Array,
    width: number,
    height: number,
    colBin: Int32Array,
    colOffset: number,
    rowBin: Int32Array,
    rowOffset: number,
    rowBase: number,
    outWidth: number,
    sums: Float64Array,
    counts: Uint32Array,
  ): void;
}

const NAMES = ['detectTissueMask', 'accumulateBins'] as const;

let kernels: TissueKernels | null | undefined;

/** The native kernels, or null (no addon, or one built before they existed). */
export function tissueKernels(): TissueKernels | null {
  if (kernels === undefined) kernels = addonFunctions<TissueKernels>(NAMES);
  return kernels;
}
