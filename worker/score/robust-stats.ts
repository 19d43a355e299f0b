/** Order statistics for thresholds that a handful of extreme patches cannot drag around. */

/** 1.4826 x MAD estimates the standard deviation of a normal distribution. */
export const MAD_TO_SIGMA = 1.4826;

/** Straight into a typed array: a slide has millions of scores, and a number[] costs 2-4x the memory. */
function finiteSorted(values: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i] as number)) n++;
  const out = new Float64Array(n);
  n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) out[n++] = v;
  }
  return out.sort();
}

function medianOfSorted(s: Float64Array): number {
  const n = s.length;
  if (n === 0) return Number.NaN;
  const h = n >> 1;
  return n % 2 === 1 ? (s[h] as number) : ((s[h - 1] as number) + (s[h] as number)) / 2;
}

/** Median of the finite values (NaN when there are none). */
export function median(values: ArrayLike<number>): number {
  return medianOfSorted(finiteSorted(values));
}

/**
 * median + nSigma x 1.4826 x MAD of the finite scores. When more than half the scores are equal the
 * MAD is 0; then the mean absolute deviation stands in, and when every score is equal nothing is
 * anomalous (Infinity) rather than everything.
 */
export function robustThreshold(scores: ArrayLike<number>, nSigma = 4): number {
  const s = finiteSorted(scores);
  if (s.length < 3) return Infinity;
  const med = medianOfSorted(s);
  const dev = s.map((v) => Math.abs(v - med)).sort();
  let spread = MAD_TO_SIGMA * medianOfSorted(dev);
  if (!(spread > 0)) {
    let sum = 0;
    for (const d of dev) sum += d;
    // sqrt(pi/2) x mean absolute deviation estimates sigma for a normal distribution.
    spread = Math.sqrt(Math.PI / 2) * (sum / dev.length);
  }
  return spread > 0 ? med + nSigma * spread : Infinity;
}
