/**
 * Order statistics of a slide's scores in O(n): the median and the top values without sorting a
 * million numbers. Quickselect with a three-way partition (scores repeat: a constant scorer gives
 * all zeros) and the middle of three as pivot; the result is the element a full sort would put at
 * that position, so callers get the sorted-array answer bit for bit.
 */

/** The finite values of `values`, as a new Float64Array (NaN marks cells outside tissue). */
export function finiteValues(values: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i] as number)) n++;
  const out = new Float64Array(n);
  n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) out[n++] = v;
  }
  return out;
}

/**
 * Rearranges `a[lo, hi)` so that a[k] is the value a sorted array would hold at k, everything
 * before it <= a[k] and everything after it >= a[k]. Returns a[k]. `a` holds no NaN.
 */
export function selectInPlace(a: Float64Array, k: number, lo = 0, hi = a.length): number {
  if (!(k >= lo && k < hi)) throw new RangeError(`select: position ${k} is outside [${lo}, ${hi})`);
  while (hi - lo > 1) {
    const x = a[lo] as number;
    const y = a[(lo + hi) >> 1] as number;
    const z = a[hi - 1] as number;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    // Three-way partition: [lo, lt) < pivot, [lt, i) == pivot, (gt, hi) > pivot.
    let lt = lo;
    let i = lo;
    let gt = hi - 1;
    while (i <= gt) {
      const v = a[i] as number;
      if (v < pivot) {
        a[i] = a[lt] as number;
        a[lt++] = v;
        i++;
      } else if (v > pivot) {
        a[i] = a[gt] as number;
        a[gt--] = v;
      } else i++;
    }
    if (k < lt) hi = lt;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return a[k] as number;
}

/** Median of `a` (NaN when empty), as a sorted array's middle (mean of the two middles when even). Reorders `a`. */
export function medianInPlace(a: Float64Array): number {
  const n = a.length;
  if (n === 0) return Number.NaN;
  const h = n >> 1;
  const upper = selectInPlace(a, h);
  if (n % 2 === 1) return upper;
  // The lower middle is the largest value left of h (select put only values <= upper there).
  let lower = -Infinity;
  for (let i = 0; i < h; i++) if ((a[i] as number) > lower) lower = a[i] as number;
  return (lower + upper) / 2;
}

/** The `count` largest values of `a`, in ascending order (as a sorted array's tail). Reorders `a`. */
export function largestInPlace(a: Float64Array, count: number): Float64Array {
  const n = a.length;
  const m = Math.min(n, Math.max(0, count));
  if (m === 0) return new Float64Array(0);
  if (m < n) selectInPlace(a, n - m);
  return a.slice(n - m).sort();
}
