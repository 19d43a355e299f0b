/**
 * Principal components of a patch cloud by randomized subspace iteration (Halko, Martinsson and
 * Tropp 2011): a Gaussian start block, a few power iterations against the centered data, then an
 * exact eigen-decomposition of the small l x l projected problem. Memory is O(l x (count + dim))
 * beyond the rows themselves; a dim x dim covariance is never formed.
 */
import type { PatchEmbeddings } from './types.js';
import { JS_CENTERED_PRODUCTS, type CenteredProducts } from './centered-products.js';
import { dot, orthonormalize, symmetricEigen } from './linalg.js';
import { gaussianFill, seededRng } from '../util/random.js';

export interface PcaOptions {
  /** Components wanted; fewer come back when the data has lower rank. */
  components: number;
  /** Extra start vectors: they soak up the spectrum's tail so the top k come out accurately. */
  oversample: number;
  /** Power iterations; each sharpens the separation of the top components from the tail. */
  powerIterations: number;
  seed: number;
}

export interface Pca {
  readonly dim: number;
  /** Components actually found (<= requested; 0 for constant data). */
  readonly k: number;
  readonly mean: Float64Array;
  /** k x dim row-major, orthonormal rows, by descending variance. */
  readonly components: Float64Array;
  /** Variance of the fit rows along each component. */
  readonly variances: Float64Array;
}

export interface Projection {
  /** count x k row-major: coordinates of every patch in the component basis. */
  readonly coords: Float32Array | Float64Array;
  /** Squared distance of every centered patch from the component subspace. */
  readonly residual: Float64Array;
}

/** Mean over every row of `e`, in float64. */
export function meanOf(e: PatchEmbeddings): Float64Array {
  const mean = new Float64Array(e.dim);
  for (let i = 0; i < e.count; i++) {
    const off = i * e.dim;
    for (let j = 0; j < e.dim; j++) mean[j] = (mean[j] as number) + (e.data[off + j] as number);
  }
  for (let j = 0; j < e.dim; j++) mean[j] = (mean[j] as number) / Math.max(1, e.count);
  return mean;
}

/**
 * Fits on the rows of `e` (the scorer's sample), centred on `mean`: the mean of every patch of the
 * slide, so that centring does not depend on which rows were sampled (null: the mean of `e`).
 * Deterministic for a given seed: the same embeddings give the same components, which keeps
 * heatmaps reproducible. The O(m x dim x l) products run in `products` (native float32 or
 * float64 JavaScript); the small l x l and l x m steps stay in float64 here.
 */
export async function fitPca(e: PatchEmbeddings, mean: Float64Array | null, options: PcaOptions, products: CenteredProducts = JS_CENTERED_PRODUCTS): Promise<Pca> {
  const { dim } = e;
  const m = e.count;
  const center = mean ?? meanOf(e);
  const l0 = Math.max(0, Math.min(options.components + options.oversample, dim, m));
  // basis: l feature-space vectors (l x dim); range: l sample-space vectors (l x m).
  const basis = new Float64Array(l0 * dim);
  const range = new Float64Array(l0 * m);
  gaussianFill(basis, seededRng(options.seed));

  // range = basis Xc^T: the sample's coordinates along each basis vector, transposed to l x m.
  const applyA = async (l: number): Promise<void> => {
    const { coords } = await products.project(e.data, m, dim, center, basis, l);
    for (let i = 0; i < m; i++) for (let j = 0; j < l; j++) range[j * m + i] = coords[i * l + j] as number;
  };
  // basis = range Xc.
  const applyAt = async (l: number): Promise<void> => {
    basis.set(await products.combine(e.data, m, dim, center, range, l));
  };

  let l = l0;
  if (l > 0) await applyA(l);
  l = orthonormalize(range, l, m);
  for (let q = 0; q < options.powerIterations && l > 0; q++) {
    await applyAt(l);
    l = orthonormalize(basis, l, dim);
    await applyA(l);
    l = orthonormalize(range, l, m);
  }
  // basis rows become B^T's columns: B = Q^T A (l x dim), and B B^T = basis basis^T is l x l.
  if (l > 0) await applyAt(l);
  const gram = new Float64Array(l * l);
  for (let a = 0; a < l; a++) {
    for (let b = a; b < l; b++) {
      const g = dot(basis, a * dim, basis, b * dim, dim);
      gram[a * l + b] = g;
      gram[b * l + a] = g;
    }
  }
  const { values, vectors } = symmetricEigen(gram, l);
  const top = values[0] ?? 0;
  let k = 0;
  while (k < Math.min(options.components, l) && (values[k] as number) > 1e-12 * top && (values[k] as number) > 0) k++;

  // Right singular vectors of A: v_a = B^T u_a / s_a.
  const components = new Float64Array(k * dim);
  const variances = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    const s = Math.sqrt(values[a] as number);
    const off = a * dim;
    for (let b = 0; b < l; b++) {
      const w = (vectors[b * l + a] as number) / s;
      for (let t = 0; t < dim; t++) components[off + t] = (components[off + t] as number) + w * (basis[b * dim + t] as number);
    }
    variances[a] = (values[a] as number) / Math.max(1, m - 1);
  }
  return { dim, k, mean: center, components, variances };
}

/** Coordinates and out-of-subspace energy of every row of `e` in the fitted basis. */
export async function project(pca: Pca, e: PatchEmbeddings, products: CenteredProducts = JS_CENTERED_PRODUCTS): Promise<Projection> {
  const { dim, k, mean, components } = pca;
  const { coords, sqNorms } = await products.project(e.data, e.count, dim, mean, components, k);
  const residual = new Float64Array(e.count);
  for (let i = 0; i < e.count; i++) {
    let inside = 0;
    for (let a = 0; a < k; a++) {
      const c = coords[i * k + a] as number;
      inside += c * c;
    }
    residual[i] = Math.max(0, (sqNorms[i] as number) - inside);
  }
  return { coords, residual };
}
