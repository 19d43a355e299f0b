/**
 * A tiny seeded generator, so projections, PCA starts and coreset seeds are identical on every
 * run and every machine: the same slide must give the same heatmap.
 */

export type Rng = () => number;

/** mulberry32: 32-bit state, uniform in [0, 1). Plenty for random projections. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller); Gaussian projections keep distances in expectation. */
export function gaussianFill(out: Float64Array | Float32Array, rng: Rng): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
}

/** `k` distinct indices of [0, n), sorted, chosen uniformly (partial Fisher-Yates). */
export function sampleIndices(n: number, k: number, rng: Rng): Int32Array {
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  const m = Math.min(k, n);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const t = all[i] as number;
    all[i] = all[j] as number;
    all[j] = t;
  }
  return all.slice(0, m).sort();
}
