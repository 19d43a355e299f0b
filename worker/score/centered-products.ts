/**
 * The two matrix products behind the `self` scorer (PCA fit and projection), both on rows
 * centred on a given mean:
 *
 *   project:  coords = (X - 1 c^T) B^T   [n, k]   plus |x_i - c|^2 per row
 *   combine:  out    = W (X - 1 c^T)     [l, dim]
 *
 * They are O(n x dim x k): for a slide of millions of patches, the whole cost of scoring. Two
 * implementations behind one interface: `native-float32` (OpenBLAS sgemm through the addon, off
 * the event loop; kernels/cpu/centered_gemm_cpu.h) and `js-float64` (plain loops, the reference
 * it is tested against, and the fallback when the addon is missing).
 */
import { dotRows } from './linalg.js';
import { nativeScoreKernels } from './native-kernels.js';
import type { NativeScoreKernels } from '../native/addon.js';

export interface CenteredProjection {
  /** n x k row-major. */
  coords: Float32Array | Float64Array;
  /** |x_i - c|^2 for each of the n rows, in float64. */
  sqNorms: Float64Array;
}

export interface CenteredProducts {
  readonly name: 'native-float32' | 'js-float64';
  /** rows: n x dim; center: dim; basis: k x dim (row-major). */
  project(rows: Float32Array, n: number, dim: number, center: Float64Array, basis: Float64Array, k: number): Promise<CenteredProjection>;
  /** rows: n x dim; center: dim; weights: l x n. Returns l x dim. */
  combine(rows: Float32Array, n: number, dim: number, center: Float64Array, weights: Float64Array, l: number): Promise<Float64Array>;
}

/** The float64 reference: the loops the scorer ran before the native kernels existed. */
export const JS_CENTERED_PRODUCTS: CenteredProducts = {
  name: 'js-float64',
  async project(rows, n, dim, center, basis, k) {
    const coords = new Float64Array(n * k);
    const sqNorms = new Float64Array(n);
    const xc = new Float64Array(dim);
    const products = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      let energy = 0;
      for (let j = 0; j < dim; j++) {
        const v = (rows[off + j] as number) - (center[j] as number);
        xc[j] = v;
        energy += v * v;
      }
      dotRows(xc, 0, basis, 0, k, dim, products);
      coords.set(products, i * k);
      sqNorms[i] = energy;
    }
    return { coords, sqNorms };
  },
  async combine(rows, n, dim, center, weights, l) {
    const out = new Float64Array(l * dim);
    const x = new Float64Array(dim);
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      for (let j = 0; j < dim; j++) x[j] = (rows[off + j] as number) - (center[j] as number);
      let j = 0;
      // Four output rows per pass over x, as in dotRows.
      for (; j + 3 < l; j += 4) {
        const y0 = weights[j * n + i] as number;
        const y1 = weights[(j + 1) * n + i] as number;
        const y2 = weights[(j + 2) * n + i] as number;
        const y3 = weights[(j + 3) * n + i] as number;
        const o0 = j * dim;
        const o1 = o0 + dim;
        const o2 = o1 + dim;
        const o3 = o2 + dim;
        for (let t = 0; t < dim; t++) {
          const v = x[t] as number;
          out[o0 + t] = (out[o0 + t] as number) + y0 * v;
          out[o1 + t] = (out[o1 + t] as number) + y1 * v;
          out[o2 + t] = (out[o2 + t] as number) + y2 * v;
          out[o3 + t] = (out[o3 + t] as number) + y3 * v;
        }
      }
      for (; j < l; j++) {
        const y = weights[j * n + i] as number;
        const o = j * dim;
        for (let t = 0; t < dim; t++) out[o + t] = (out[o + t] as number) + y * (x[t] as number);
      }
    }
    return out;
  },
};

/** float32 sgemm on rows centred in float64 (kernels/cpu/centered_gemm_cpu.h). */
export function nativeCenteredProducts(kernels: NativeScoreKernels): CenteredProducts {
  // Subarrays are fine: the addon reads a typed array's own window of its buffer.
  const rowsOf = (rows: Float32Array, n: number, dim: number): Float32Array => (rows.length === n * dim ? rows : rows.subarray(0, n * dim));
  return {
    name: 'native-float32',
    async project(rows, n, dim, center, basis, k) {
      return kernels.projectCentered(rowsOf(rows, n, dim), n, dim, center, Float32Array.from(basis.subarray(0, k * dim)), k);
    },
    async combine(rows, n, dim, center, weights, l) {
      const out = await kernels.combineCentered(rowsOf(rows, n, dim), n, dim, center, Float32Array.from(weights.subarray(0, l * n)), l);
      return Float64Array.from(out);
    },
  };
}

/** Native when the addon has the kernels, else the JavaScript reference. */
export function defaultCenteredProducts(): CenteredProducts {
  const kernels = nativeScoreKernels();
  return kernels === null ? JS_CENTERED_PRODUCTS : nativeCenteredProducts(kernels);
}
