/**
 * Greedy k-center coreset (Gonzalez 1985; the memory-bank subsampling of PatchCore, Roth et al.
 * 2022): repeatedly take the point farthest from everything taken so far. The result covers the
 * whole cloud, rare tissue included, which a uniform sample of the same size would thin out.
 *
 * Distances are taken on a seeded Gaussian random projection to `projectionDim` dimensions
 * (Johnson-Lindenstrauss: distances are kept up to a small factor), which makes each greedy step
 * O(N x projectionDim) instead of O(N x dim); the triangle inequality then skips the points a new
 * centre cannot reach, so late steps cost little more than a pass over N numbers.
 */
import { gaussianFill, seededRng } from '../util/random.js';
import type { PatchEmbeddings } from './types.js';

export interface CoresetOptions {
  maxSize: number;
  projectionDim: number;
  seed: number;
}

/** The points of several embedding sets as one index space, projected for distance computations. */
function projectAll(sets: readonly PatchEmbeddings[], dim: number, p: number, seed: number): Float32Array {
  const total = sets.reduce((s, e) => s + e.count, 0);
  const out = new Float32Array(total * p);
  if (p === dim) {
    let off = 0;
    for (const e of sets) {
      out.set(e.data, off);
      off += e.data.length;
    }
    return out;
  }
  // dim x p, scaled so squared distances are preserved in expectation.
  const r = new Float32Array(dim * p);
  gaussianFill(r, seededRng(seed));
  const scale = 1 / Math.sqrt(p);
  for (let i = 0; i < r.length; i++) r[i] = (r[i] as number) * scale;
  const acc = new Float64Array(p);
  let row = 0;
  for (const e of sets) {
    for (let i = 0; i < e.count; i++, row++) {
      acc.fill(0);
      const xOff = i * dim;
      for (let j = 0; j < dim; j++) {
        const x = e.data[xOff + j] as number;
        if (x === 0) continue;
        const rOff = j * p;
        for (let t = 0; t < p; t++) acc[t] = (acc[t] as number) + x * (r[rOff + t] as number);
      }
      out.set(acc, row * p);
    }
  }
  return out;
}

/**
 * Indices (into the concatenation of `sets`) of at most `maxSize` points, in the order chosen.
 * Stops early when every remaining point duplicates a chosen one. Deterministic for a given seed.
 */
export function kCenterCoreset(sets: readonly PatchEmbeddings[], dim: number, options: CoresetOptions): Int32Array {
  const total = sets.reduce((s, e) => s + e.count, 0);
  if (total === 0) return new Int32Array(0);
  if (total <= options.maxSize) return Int32Array.from({ length: total }, (_, i) => i);
  const p = Math.min(options.projectionDim, dim);
  const pts = projectAll(sets, dim, p, options.seed);
  const dist2 = (a: number, b: number): number => {
    const aOff = a * p;
    const bOff = b * p;
    let d = 0;
    for (let t = 0; t < p; t++) {
      const v = (pts[aOff + t] as number) - (pts[bOff + t] as number);
      d += v * v;
    }
    return d;
  };
  // Squared distance of every point to its nearest chosen centre, and which centre that is.
  const minDist = new Float64Array(total).fill(Infinity);
  const owner = new Int32Array(total);
  const chosen: number[] = [];
  const centreDist = new Float64Array(options.maxSize);
  let next = Math.floor(seededRng(options.seed ^ 0x51ed270b)() * total);
  while (chosen.length < options.maxSize) {
    const c = chosen.length;
    chosen.push(next);
    for (let j = 0; j < c; j++) centreDist[j] = dist2(next, chosen[j] as number);
    let best = -1;
    let bestDist = 0;
    for (let i = 0; i < total; i++) {
      let m = minDist[i] as number;
      // Triangle inequality: if the new centre is at least twice as far from i's centre as i is,
      // it cannot be closer to i. Skips almost every point once the centres are dense; the
      // result is the same as checking them all.
      if (c === 0 || (centreDist[owner[i] as number] as number) < 4 * m) {
        // dist2(i, next), inlined with two accumulators: this loop is the whole cost.
        const iOff = i * p;
        const nOff = next * p;
        let d0 = 0;
        let d1 = 0;
        let t = 0;
        for (; t + 1 < p; t += 2) {
          const v0 = (pts[iOff + t] as number) - (pts[nOff + t] as number);
          const v1 = (pts[iOff + t + 1] as number) - (pts[nOff + t + 1] as number);
          d0 += v0 * v0;
          d1 += v1 * v1;
        }
        if (t < p) {
          const v = (pts[iOff + t] as number) - (pts[nOff + t] as number);
          d0 += v * v;
        }
        const d = d0 + d1;
        if (d < m) {
          m = d;
          minDist[i] = d;
          owner[i] = c;
        }
      }
      if (m > bestDist) {
        bestDist = m;
        best = i;
      }
    }
    if (best < 0) break;
    next = best;
  }
  return Int32Array.from(chosen);
}
