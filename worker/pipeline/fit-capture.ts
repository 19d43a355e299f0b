/**
 * The scoring's first pass, taken while the slide is embedded (embedded mode): the column sums of
 * every batch and the rows of the scorer's fit sample, picked from each batch's embeddings as the
 * engine returns them. The scoring thread then fits at once instead of reading every part file
 * back (pass 1 of aggregate-stage.ts), with the same numbers bit for bit: the same BF16 rows,
 * decoded the same way, and the sums added in batch order as pass 1 adds them.
 */
import { decodeBf16 } from '../infer/bf16.js';
import type { TissueLayout } from './tissue-layout.js';

/** What the scoring thread needs instead of pass 1. */
export interface CapturedFit {
  /** The fit rows the sample holds (scorer.fitRows(count)), in that order. */
  rows: Int32Array;
  /** rows.length x dim float32. */
  sample: Float32Array;
  /** Column sums over every tissue patch of the slide, added batch by batch in batch order. */
  sums: Float64Array;
  /** Tissue patches the sums cover. */
  count: number;
}

export class FitCapture {
  private readonly slot: Int32Array;
  private readonly sample: Float32Array;
  private readonly batchSums: (Float64Array | undefined)[];
  private readonly batchCounts: number[] = [];
  private found = 0;

  constructor(
    private readonly layout: TissueLayout,
    private readonly rows: Int32Array,
    batches: number,
  ) {
    this.slot = new Int32Array(layout.count).fill(-1);
    rows.forEach((r, i) => {
      this.slot[r] = i;
    });
    this.sample = new Float32Array(rows.length * layout.dim);
    this.batchSums = new Array<Float64Array | undefined>(batches);
  }

  /** One batch as the engine returned it: BF16 rows of `cells`, and their column sums. */
  add(batch: number, cells: Int32Array, embeddings: Uint16Array, sums: Float64Array): void {
    const { dim, row } = this.layout;
    cells.forEach((cell, i) => {
      const s = this.slot[row[cell] as number] ?? -1;
      if (s < 0) return;
      decodeBf16(embeddings.subarray(i * dim, (i + 1) * dim), this.sample.subarray(s * dim, (s + 1) * dim));
      this.found++;
    });
    this.batchSums[batch] = sums.slice();
    this.batchCounts[batch] = cells.length;
  }

  /** The captured pass, or null when some batch was not seen here (its part came from an earlier run). */
  result(): CapturedFit | null {
    if (this.found !== this.rows.length) return null;
    const sums = new Float64Array(this.layout.dim);
    let count = 0;
    for (let b = 0; b < this.batchSums.length; b++) {
      const s = this.batchSums[b];
      if (s === undefined) return null;
      for (let j = 0; j < sums.length; j++) sums[j] = (sums[j] as number) + (s[j] as number);
      count += this.batchCounts[b] as number;
    }
    return { rows: this.rows, sample: this.sample, sums, count };
  }
}
