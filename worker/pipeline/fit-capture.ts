/**
 * The scoring's fit input taken from batches as the engine returns them (embedded mode): the
 * column sums of the fit batches and the rows of the scorer's fit sample. The same numbers, bit
 * for bit, as reading the fit batches' part files back (gatherRows): the same BF16 rows, decoded
 * the same way, and the sums added in ascending batch order, as gatherRows adds them.
 */
import { decodeBf16 } from '../infer/bf16.js';
import type { TissueLayout } from './tissue-layout.js';

/** What the scorer's fit needs. */
export interface CapturedFit {
  /** rows.length x dim float32: the fit sample, in the order of the rows asked for. */
  sample: Float32Array;
  /** Column sums over every tissue patch of the fit batches. */
  sums: Float64Array;
  /** Tissue patches the sums cover. */
  count: number;
}

export class FitCapture {
  private readonly slot: Int32Array;
  private readonly sample: Float32Array;
  private readonly batchSums = new Map<number, { sums: Float64Array; count: number }>();
  private readonly fitBatches: ReadonlySet<number>;
  private found = 0;

  /** `rows`: the fit sample's tissue rows; `fitBatches`: the batches whose sums the fit needs. */
  constructor(
    private readonly layout: TissueLayout,
    private readonly rows: Int32Array,
    fitBatches: readonly number[],
  ) {
    this.slot = new Int32Array(layout.count).fill(-1);
    rows.forEach((r, i) => {
      this.slot[r] = i;
    });
    this.sample = new Float32Array(rows.length * layout.dim);
    this.fitBatches = new Set(fitBatches);
  }

  /** A batch as the engine returned it: BF16 rows of `cells`, and their column sums. Others than fit batches are ignored. */
  add(batch: number, cells: Int32Array, embeddings: Uint16Array, sums: Float64Array): void {
    if (!this.fitBatches.has(batch) || this.batchSums.has(batch)) return;
    const { dim, row } = this.layout;
    cells.forEach((cell, i) => {
      const s = this.slot[row[cell] as number] ?? -1;
      if (s < 0) return;
      decodeBf16(embeddings.subarray(i * dim, (i + 1) * dim), this.sample.subarray(s * dim, (s + 1) * dim));
      this.found++;
    });
    this.batchSums.set(batch, { sums: sums.slice(), count: cells.length });
  }

  /** Whether every fit batch has been added. */
  get complete(): boolean {
    return this.batchSums.size === this.fitBatches.size;
  }

  /** The fit input, or null until every fit batch was added (or when its rows were not all found). */
  result(): CapturedFit | null {
    if (!this.complete || this.found !== this.rows.length) return null;
    const sums = new Float64Array(this.layout.dim);
    let count = 0;
    for (const b of [...this.fitBatches].sort((x, y) => x - y)) {
      const s = this.batchSums.get(b) as { sums: Float64Array; count: number };
      for (let j = 0; j < sums.length; j++) sums[j] = (sums[j] as number) + (s.sums[j] as number);
      count += s.count;
    }
    return { sample: this.sample, sums, count };
  }
}
