/**
 * The scorer protocol (types.ts) for patches already in memory: statistics over all rows, the
 * fit on the rows the scorer asks for, then scoring chunk by chunk. The aggregate stage runs the
 * same steps streaming over part files; this is what tests and small callers use, and what the
 * streaming result must equal.
 */
import type { FitStatistics, PatchEmbeddings, Scorer } from './types.js';
import { ScoreInputError } from './errors.js';
import { arrayKernels } from '../native/array-kernels.js';

/** Running float64 column sums of embedding rows: the mean that `fit` centres on. */
export class RowSums {
  readonly sums: Float64Array;
  count = 0;

  constructor(readonly dim: number) {
    this.sums = new Float64Array(dim);
  }

  /** Adds the first `count` rows of `data` (count x dim). `native: false`: the JavaScript loop (same bits). */
  add(data: Float32Array, count: number, options: { native?: boolean } = {}): void {
    const { dim, sums } = this;
    if (!(Number.isInteger(count) && count >= 0 && data.length >= count * dim)) {
      throw new ScoreInputError(`row sums: ${count} rows of ${dim} need ${count * dim} values, the data has ${data.length}`);
    }
    const k = options.native === false ? null : arrayKernels();
    if (k !== null) {
      k.addColumnSums(data, count, dim, sums);
      this.count += count;
      return;
    }
    for (let i = 0; i < count; i++) {
      const off = i * dim;
      for (let j = 0; j < dim; j++) sums[j] = (sums[j] as number) + (data[off + j] as number);
    }
    this.count += count;
  }

  /** Adds column totals computed elsewhere (a part file's `sums`) over `count` rows. */
  addTotals(totals: Float64Array, count: number): void {
    if (totals.length !== this.dim) throw new ScoreInputError(`row sums: totals have ${totals.length} columns, expected ${this.dim}`);
    for (let j = 0; j < this.dim; j++) this.sums[j] = (this.sums[j] as number) + (totals[j] as number);
    this.count += count;
  }

  statistics(): FitStatistics {
    const mean = this.sums.map((s) => s / Math.max(1, this.count));
    return { count: this.count, dim: this.dim, mean };
  }
}

/** The rows `rows` (indices into e) of `e`, in that order. */
export function selectRows(e: PatchEmbeddings, rows: Int32Array): PatchEmbeddings {
  const { dim } = e;
  const data = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => data.set(e.data.subarray(r * dim, (r + 1) * dim), i * dim));
  return { count: rows.length, dim, data };
}

export interface ScoreEmbeddingsOptions {
  /** Rows per scoreChunk call (the aggregate stage's chunks are one part file each). */
  chunkRows: number;
}

export const SCORE_EMBEDDINGS_DEFAULTS: Readonly<ScoreEmbeddingsOptions> = { chunkRows: 65_536 };

/** Fits `scorer` to `e` and scores every row of it. */
export async function scoreEmbeddings(scorer: Scorer, e: PatchEmbeddings, options: Partial<ScoreEmbeddingsOptions> = {}): Promise<Float32Array> {
  const { chunkRows } = { ...SCORE_EMBEDDINGS_DEFAULTS, ...options };
  const sums = new RowSums(e.dim);
  sums.add(e.data, e.count);
  const fitted = await scorer.fit(selectRows(e, scorer.fitRows(e.count)), sums.statistics());
  try {
    const out = new Float32Array(e.count);
    for (let r0 = 0; r0 < e.count; r0 += chunkRows) {
      const n = Math.min(chunkRows, e.count - r0);
      out.set(await fitted.scoreChunk({ count: n, dim: e.dim, data: e.data.subarray(r0 * e.dim, (r0 + n) * e.dim) }), r0);
    }
    return out;
  } finally {
    fitted.close();
  }
}
