/**
 * Exact k = 1 Euclidean nearest-neighbour distances from query patches to a reference bank.
 *
 * Distances come from |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, so the work is one big inner-product
 * matrix Q x B^T computed block by block: exactly what a native BLAS or GPU GEMM computes.
 * `NearestNeighbourSearch` is the seam: `NativeNearestNeighbour` (native-nearest-neighbour.ts,
 * float32 sgemm on the CPU or cuBLAS on the GPU) is what the reference scorer uses when the addon
 * is built; `JsNearestNeighbour` (float64, single-threaded) is the plain reference it is tested
 * against and the fallback without the addon.
 */
import { ScoreInputError } from './errors.js';
import { dot, dotRows } from './linalg.js';
import type { PatchEmbeddings } from './types.js';

export interface NearestNeighbourSearch {
  /** 'js-float64', 'native-cpu' or 'native-cuda': recorded with the scores. */
  readonly name: string;
  /** For every query row, the Euclidean distance to its nearest bank row. */
  nearest(queries: PatchEmbeddings): Promise<Float32Array>;
  /** Frees what the search holds outside the JS heap (a bank on the GPU) now; a later search may rebuild it. */
  close(): void;
}

/** The points searched: `size` rows of `dim` floats, row-major. */
export interface VectorSet {
  readonly size: number;
  readonly dim: number;
  readonly data: Float32Array;
}

export interface JsNearestNeighbourOptions {
  /** Queries per block. */
  queryBlock: number;
  /** Bank rows per block: small enough that a block of the bank stays in cache across the queries. */
  bankBlock: number;
}

export const JS_NEAREST_NEIGHBOUR_DEFAULTS: Readonly<JsNearestNeighbourOptions> = { queryBlock: 32, bankBlock: 64 };

function squaredNorms(data: Float32Array, n: number, dim: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = i * dim, end = j + dim; j < end; j++) s += (data[j] as number) * (data[j] as number);
    out[i] = s;
  }
  return out;
}

export class JsNearestNeighbour implements NearestNeighbourSearch {
  readonly name = 'js-float64';
  private readonly bankNorms: Float64Array;
  private readonly options: JsNearestNeighbourOptions;

  constructor(
    private readonly bank: VectorSet,
    options: Partial<JsNearestNeighbourOptions> = {},
  ) {
    if (bank.size < 1) throw new ScoreInputError('nearest-neighbour search needs a non-empty bank');
    if (bank.data.length !== bank.size * bank.dim) throw new ScoreInputError(`bank data has ${bank.data.length} values, expected ${bank.size} x ${bank.dim}`);
    this.options = { ...JS_NEAREST_NEIGHBOUR_DEFAULTS, ...options };
    this.bankNorms = squaredNorms(bank.data, bank.size, bank.dim);
  }

  async nearest(queries: PatchEmbeddings): Promise<Float32Array> {
    return this.nearestSync(queries);
  }

  close(): void {}

  /** `nearest` on the calling thread (it blocks the event loop for large inputs). */
  nearestSync(queries: PatchEmbeddings): Float32Array {
    const { dim, size, data: b } = this.bank;
    if (queries.dim !== dim) throw new ScoreInputError(`queries have dim ${queries.dim}, the bank has dim ${dim}`);
    const q = queries.data;
    const n = queries.count;
    const qNorms = squaredNorms(q, n, dim);
    const best = new Float64Array(n).fill(Infinity);
    const { queryBlock, bankBlock } = this.options;
    const products = new Float64Array(bankBlock);
    const norms = this.bankNorms;
    for (let q0 = 0; q0 < n; q0 += queryBlock) {
      const q1 = Math.min(n, q0 + queryBlock);
      for (let b0 = 0; b0 < size; b0 += bankBlock) {
        const b1 = Math.min(size, b0 + bankBlock);
        let i = q0;
        // 2 queries x 4 bank rows per pass: 6 loads feed 8 products, the most V8 keeps in registers.
        for (; i + 1 < q1; i += 2) {
          const qa = i * dim;
          const qb = qa + dim;
          let ma = best[i] as number;
          let mb = best[i + 1] as number;
          let j = b0;
          for (; j + 3 < b1; j += 4) {
            const o0 = j * dim;
            const o1 = o0 + dim;
            const o2 = o1 + dim;
            const o3 = o2 + dim;
            let a0 = 0;
            let a1 = 0;
            let a2 = 0;
            let a3 = 0;
            let c0 = 0;
            let c1 = 0;
            let c2 = 0;
            let c3 = 0;
            for (let t = 0; t < dim; t++) {
              const x = q[qa + t] as number;
              const y = q[qb + t] as number;
              const v0 = b[o0 + t] as number;
              const v1 = b[o1 + t] as number;
              const v2 = b[o2 + t] as number;
              const v3 = b[o3 + t] as number;
              a0 += x * v0;
              a1 += x * v1;
              a2 += x * v2;
              a3 += x * v3;
              c0 += y * v0;
              c1 += y * v1;
              c2 += y * v2;
              c3 += y * v3;
            }
            const n0 = norms[j] as number;
            const n1 = norms[j + 1] as number;
            const n2 = norms[j + 2] as number;
            const n3 = norms[j + 3] as number;
            ma = Math.min(ma, n0 - 2 * a0, n1 - 2 * a1, n2 - 2 * a2, n3 - 2 * a3);
            mb = Math.min(mb, n0 - 2 * c0, n1 - 2 * c1, n2 - 2 * c2, n3 - 2 * c3);
          }
          for (; j < b1; j++) {
            const o = j * dim;
            ma = Math.min(ma, (norms[j] as number) - 2 * dot(q, qa, b, o, dim));
            mb = Math.min(mb, (norms[j] as number) - 2 * dot(q, qb, b, o, dim));
          }
          best[i] = ma;
          best[i + 1] = mb;
        }
        for (; i < q1; i++) {
          dotRows(q, i * dim, b, b0 * dim, b1 - b0, dim, products);
          let m = best[i] as number;
          for (let j = b0; j < b1; j++) m = Math.min(m, (norms[j] as number) - 2 * (products[j - b0] as number));
          best[i] = m;
        }
      }
    }
    const out = new Float32Array(n);
    // |q|^2 is the same for every bank row, so it is added once; rounding can push a zero below 0.
    for (let i = 0; i < n; i++) out[i] = Math.sqrt(Math.max(0, (qNorms[i] as number) + (best[i] as number)));
    return out;
  }
}
