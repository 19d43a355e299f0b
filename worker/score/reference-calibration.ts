/**
 * The threshold of a reference bank, set by normal tissue itself. Some normal patches are held out
 * when the bank is built (never in it), and their distances to the bank are the distances a new
 * normal patch has. The threshold is a high quantile of them (default 0.99: about 1 % of normal
 * tissue scores above it). Scores at or above it mean "farther from the normal reference than
 * normal tissue is", whatever the slide being scored looks like: a slide scored against a bank
 * of itself has (almost) nothing anomalous, a slide unlike the bank has a lot.
 *
 * Why held-out patches, not the bank's own leave-one-out distances: the bank is a k-center
 * coreset, whose points are picked to be far apart; their distances to one another are larger
 * than a typical normal patch's distance to the coreset, and would set the threshold too high.
 */
import type { DeviceName } from '../infer/vit-engine.js';
import { ScoreConfigError } from './errors.js';
import { defaultNearestNeighbourSearch } from './native-nearest-neighbour.js';
import type { ReferenceBank, ReferenceThreshold } from './reference-bank.js';
import { checkEmbeddings, type PatchEmbeddings } from './types.js';

export interface CalibrationOptions {
  quantile: number;
  device: DeviceName;
}

export const CALIBRATION_DEFAULTS: Readonly<CalibrationOptions> = { quantile: 0.99, device: 'cpu' };

/** Fewest held-out patches a threshold may rest on. */
export const MIN_CALIBRATION_PATCHES = 20;

/** Linear-interpolated quantile of sorted values. */
function quantileOf(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** The bank with its threshold from the held-out normal patches' distances. */
export async function calibrateReferenceBank(bank: ReferenceBank, heldOut: PatchEmbeddings, options: Partial<CalibrationOptions> = {}): Promise<ReferenceBank> {
  const o = { ...CALIBRATION_DEFAULTS, ...options };
  if (!(o.quantile > 0.5 && o.quantile < 1)) throw new ScoreConfigError(`reference bank: threshold quantile must be in (0.5, 1), got ${o.quantile}`);
  checkEmbeddings(heldOut, bank.dim);
  if (heldOut.count < MIN_CALIBRATION_PATCHES) {
    throw new ScoreConfigError(`reference bank: ${heldOut.count} held-out normal patches cannot set a threshold (at least ${MIN_CALIBRATION_PATCHES}); build the bank from more normal tissue`);
  }
  const search = defaultNearestNeighbourSearch(bank, o.device);
  let distances: Float32Array;
  try {
    distances = await search.nearest(heldOut);
  } finally {
    search.close();
  }
  const sorted = Float64Array.from(distances).sort();
  const threshold: ReferenceThreshold = {
    value: quantileOf(sorted, o.quantile),
    quantile: o.quantile,
    sample: sorted.length,
    median: quantileOf(sorted, 0.5),
    max: sorted[sorted.length - 1] as number,
  };
  return { ...bank, threshold };
}
