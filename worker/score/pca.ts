/**
 * Principal components of a patch cloud by randomized subspace iteration (Halko, Martinsson and
 * Tropp 2011): a Gaussian start block, a few power iterations against the centered data, then an
 * exact eigen-decomposition of the small l x l projected problem. The data is streamed row by row,
 * so memory is O(l x (count + dim)) and a dim x dim covariance is never formed.
 */
import type { PatchEmbeddings } from './types.js';
import { dot, dotRows, orthonormalize, symmetricEigen } from './linalg.js';
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
  readonly coords: Float64Array;
  /** Squared distance of every centered patch from the component subspace. */
  readonly residual: Float64Array;
}

/** Mean over every row: centering must not depend on which rows were sampled for the fit. */
function meanOf(e: PatchEmbeddings): Float64Array {
  const mean = new Float64Array(e.dim);
  for (let i = 0; i < e.count; i++) {
    const off = i * e.dim;
    for (let j = 0; j < e.dim; j++) mean[j] = (mean[j] as number) + (e.data[off + j] as number);
  }
  for (let j = 0; j < e.dim; j++) mean[j] = (mean[j] as number) / Math.max(1, e.count);
  return mean;
}

/**
 * Fits on `rows` (all rows when null). Deterministic for a given seed: the same embeddings give the
 * same components, which keeps heatmaps reproducible.
 */
export function fitPca(e: PatchEmbeddings, rows: Int32Array | null, options: PcaOptions): Pca {
  const { dim } = e;
  const m = rows === null ? e.count : rows.length;
  const mean = meanOf(e);
  const l0 = Math.max(0, Math.min(options.components + options.oversample, dim, m));
  const xc = new Float64Array(dim);
  const centeredRow = (i: number): Float64Array => {
    const r = rows === null ? i : (rows[i] as number);
    const off = r * dim;
    for (let j = 0; j < dim; j++) xc[j] = (e.data[off + j] as number) - (mean[j] as number);
    return xc;
  };
  // basis: l feature-space vectors (l x dim); range: l sample-space vectors (l x m).
  const basis = new Float64Array(l0 * dim);
  const range = new Float64Array(l0 * m);
  gaussianFill(basis, seededRng(options.seed));

  const products = new Float64Array(l0);
  const applyA = (l: number): void => {
    for (let i = 0; i < m; i++) {
      dotRows(centeredRow(i), 0, basis, 0, l, dim, products);
      for (let j = 0; j < l; j++) range[j * m + i] = products[j] as number;
    }
  };
  const applyAt = (l: number): void => {
    basis.fill(0, 0, l * dim);
    for (let i = 0; i < m; i++) {
      const x = centeredRow(i);
      let j = 0;
      // Four output rows per pass over x, as in dotRows.
      for (; j + 3 < l; j += 4) {
        const y0 = range[j * m + i] as number;
        const y1 = range[(j + 1) * m + i] as number;
        const y2 = range[(j + 2) * m + i] as number;
        const y3 = range[(j + 3) * m + i] as number;
        const o0 = j * dim;
        const o1 = o0 + dim;
        const o2 = o1 + dim;
        const o3 = o2 + dim;
        for (let t = 0; t < dim; t++) {
          const v = x[t] as number;
          basis[o0 + t] = (basis[o0 + t] as number) + y0 * v;
          basis[o1 + t] = (basis[o1 + t] as number) + y1 * v;
          basis[o2 + t] = (basis[o2 + t] as number) + y2 * v;
          basis[o3 + t] = (basis[o3 + t] as number) + y3 * v;
        }
      }
      for (; j < l; j++) {
        const y = range[j * m + i] as number;
        const off = j * dim;
        for (let t = 0; t < dim; t++) basis[off + t] = (basis[off + t] as number) + y * (x[t] as number);
      }
    }
  };

  let l = l0;
  applyA(l);
  l = orthonormalize(range, l, m);
  for (let q = 0; q < options.powerIterations && l > 0; q++) {
    applyAt(l);
    l = orthonormalize(basis, l, dim);
    applyA(l);
    l = orthonormalize(range, l, m);
  }
  // basis rows become B^T's columns: B = Q^T A (l x dim), and B B^T = basis basis^T is l x l.
  applyAt(l);
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
  return { dim, k, mean, components, variances };
}

/** Coordinates and out-of-subspace energy of every row of `e` in the fitted basis. */
export function project(pca: Pca, e: PatchEmbeddings): Projection {
  const { dim, k, mean, components } = pca;
  const coords = new Float64Array(e.count * k);
  const residual = new Float64Array(e.count);
  const xc = new Float64Array(dim);
  const products = new Float64Array(k);
  for (let i = 0; i < e.count; i++) {
    const off = i * dim;
    let energy = 0;
    for (let j = 0; j < dim; j++) {
      const v = (e.data[off + j] as number) - (mean[j] as number);
      xc[j] = v;
      energy += v * v;
    }
    dotRows(xc, 0, components, 0, k, dim, products);
    let inside = 0;
    for (let a = 0; a < k; a++) {
      const c = products[a] as number;
      coords[i * k + a] = c;
      inside += c * c;
    }
    residual[i] = Math.max(0, energy - inside);
  }
  return { coords, residual };
}
