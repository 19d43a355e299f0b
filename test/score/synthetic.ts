/**
 * Seeded embedding clouds shaped like a ViT's: most variance in a few latent directions plus
 * isotropic noise. Deterministic, so every test sees the same numbers on every machine.
 */
import { gaussianFill, seededRng, type Rng } from '../../worker/util/random.js';
import type { PatchEmbeddings } from '../../worker/score/types.js';

export interface Cloud {
  dim: number;
  /** latent x dim mixing matrix. */
  mixing: Float64Array;
  latent: number;
  noise: number;
  rng: Rng;
}

export function makeCloud(dim: number, latent: number, seed: number, noise = 0.3): Cloud {
  const rng = seededRng(seed);
  const mixing = new Float64Array(latent * dim);
  gaussianFill(mixing, rng);
  return { dim, mixing, latent, noise, rng };
}

/** `count` normal patches of the cloud, optionally shifted by `offset` (length dim). */
export function sample(cloud: Cloud, count: number, offset?: Float64Array): PatchEmbeddings {
  const { dim, latent, mixing, noise, rng } = cloud;
  const data = new Float32Array(count * dim);
  const z = new Float64Array(latent);
  const eps = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    gaussianFill(z, rng);
    gaussianFill(eps, rng);
    for (let j = 0; j < dim; j++) {
      let v = noise * (eps[j] as number) + (offset?.[j] ?? 0);
      for (let a = 0; a < latent; a++) v += (z[a] as number) * (mixing[a * dim + j] as number);
      data[i * dim + j] = v;
    }
  }
  return { count, dim, data };
}

export function randomUnit(dim: number, rng: Rng): Float64Array {
  const v = new Float64Array(dim);
  gaussianFill(v, rng);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** Row indices sorted by descending score. */
export function ranking(scores: Float32Array): number[] {
  return Array.from(scores.keys()).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}

export function concat(a: PatchEmbeddings, b: PatchEmbeddings): PatchEmbeddings {
  const data = new Float32Array(a.data.length + b.data.length);
  data.set(a.data);
  data.set(b.data, a.data.length);
  return { count: a.count + b.count, dim: a.dim, data };
}
