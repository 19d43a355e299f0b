/** Order statistics for thresholds that a handful of extreme patches cannot drag around. */
import { finiteValues, medianInPlace } from './order-statistics.js';

/** 1.4826 x MAD estimates the standard deviation of a normal distribution. */
export const MAD_TO_SIGMA = 1.4826;

/** Median of the finite values (NaN when there are none). */
export function median(values: ArrayLike<number>): number {
  return medianInPlace(finiteValues(values));
}

/**
 * median + nSigma x 1.4826 x MAD of the finite scores. When more than half the scores are equal the
 * MAD is 0; then the mean absolute deviation stands in, and when every score is equal nothing is
 * anomalous (Infinity) rather than everything. Both medians by selection, not sorting: a slide's
 * million scores took ~0.4 s to sort twice; the answer is the same bit for bit.
 */
export function robustThreshold(scores: ArrayLike<number>, nSigma = 4): number {
  const s = finiteValues(scores);
  if (s.length < 3) return Infinity;
  const med = medianInPlace(s);
  const dev = s.map((v) => Math.abs(v - med));
  let spread = MAD_TO_SIGMA * medianInPlace(dev);
  if (!(spread > 0)) {
    // Summed in ascending order, as always: the mean's last bits do not depend on the input order.
    dev.sort();
    let sum = 0;
    for (const d of dev) sum += d;
    // sqrt(pi/2) x mean absolute deviation estimates sigma for a normal distribution.
    spread = Math.sqrt(Math.PI / 2) * (sum / dev.length);
  }
  return spread > 0 ? med + nSigma * spread : Infinity;
}
