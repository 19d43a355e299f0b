// Selection against sorting: the same values, bit for bit, on random data with many repeats,
// and the thresholds and slide score built on it against their sort-based definitions.
import { describe, expect, it } from 'vitest';
import { finiteValues, largestInPlace, medianInPlace, selectInPlace } from '../../worker/score/order-statistics.js';
import { MAD_TO_SIGMA, robustThreshold } from '../../worker/score/robust-stats.js';
import { slideScore } from '../../worker/store/summary.js';
import { seededRng } from '../../worker/util/random.js';

function sample(rng: () => number, n: number, distinct: number): Float64Array {
  // Few distinct values (repeats, like a constant scorer's zeros) or many, plus NaN holes.
  return Float64Array.from({ length: n }, () => (rng() < 0.05 ? Number.NaN : distinct > 0 ? Math.floor(rng() * distinct) : rng() * 10 - 3));
}

const sortedFinite = (a: ArrayLike<number>): Float64Array => finiteValues(a).sort();

function referenceThreshold(scores: ArrayLike<number>, nSigma: number): number {
  const s = sortedFinite(scores);
  if (s.length < 3) return Infinity;
  const mid = (x: Float64Array): number => (x.length % 2 === 1 ? (x[x.length >> 1] as number) : ((x[(x.length >> 1) - 1] as number) + (x[x.length >> 1] as number)) / 2);
  const med = mid(s);
  const dev = s.map((v) => Math.abs(v - med)).sort();
  let spread = MAD_TO_SIGMA * mid(dev);
  if (!(spread > 0)) spread = Math.sqrt(Math.PI / 2) * (dev.reduce((a, d) => a + d, 0) / dev.length);
  return spread > 0 ? med + nSigma * spread : Infinity;
}

function referenceSlideScore(scores: ArrayLike<number>): number | null {
  const s = sortedFinite(scores);
  if (s.length === 0) return null;
  const top = Math.max(1, Math.ceil(s.length * 0.01));
  let sum = 0;
  for (let i = s.length - top; i < s.length; i++) sum += s[i] as number;
  return sum / top;
}

describe('order statistics by selection', () => {
  const rng = seededRng(1201);
  const cases = [1, 2, 3, 4, 7, 100, 1001, 20_000].flatMap((n) => [0, 1, 3, 50].map((distinct) => sample(rng, n, distinct)));

  it('select, median and the largest values equal the sorted array at every probed position', () => {
    for (const values of cases) {
      const sorted = sortedFinite(values);
      if (sorted.length === 0) continue;
      for (const k of [0, sorted.length >> 1, sorted.length - 1, Math.floor(rng() * sorted.length)]) {
        expect(selectInPlace(finiteValues(values), k)).toBe(sorted[k]);
      }
      const n = sorted.length;
      const mid = n % 2 === 1 ? sorted[n >> 1] : ((sorted[(n >> 1) - 1] as number) + (sorted[n >> 1] as number)) / 2;
      expect(medianInPlace(finiteValues(values))).toBe(mid);
      for (const m of [1, 3, Math.ceil(n / 100), n]) expect(Array.from(largestInPlace(finiteValues(values), m))).toEqual(Array.from(sorted.slice(n - Math.min(m, n))));
    }
    expect(Number.isNaN(medianInPlace(new Float64Array(0)))).toBe(true);
    expect(() => selectInPlace(new Float64Array(3), 3)).toThrow(RangeError);
  });

  it('robustThreshold and slideScore give their sort-based definitions bit for bit', () => {
    for (const values of cases) {
      expect(robustThreshold(values, 3)).toBe(referenceThreshold(values, 3));
      expect(slideScore(values)).toBe(referenceSlideScore(values));
    }
    // All equal: MAD and mean deviation are 0, nothing is anomalous.
    expect(robustThreshold(new Float64Array(10).fill(2), 3)).toBe(Infinity);
    expect(slideScore([Number.NaN])).toBeNull();
  });
});
