/**
 * `reference:<bank>`: distance from each patch to the nearest patch of normal reference tissue
 * (PatchCore's k = 1 score). Unlike `self`, it flags tissue that is unusual compared with normal
 * slides even when it fills most of this slide.
 */
import { JsNearestNeighbour, type NearestNeighbourSearch } from './nearest-neighbour.js';
import type { ReferenceBank } from './reference-bank.js';
import { robustThreshold } from './robust-stats.js';
import { checkEmbeddings, type PatchEmbeddings, type Scorer } from './types.js';

export interface ReferenceScorerOptions {
  /** Where the bank came from, recorded in `method` and `params`. */
  bankPath: string;
  /** Replaces the JS search, e.g. with a GEMM on the GPU. */
  search: NearestNeighbourSearch | null;
  thresholdSigmas: number;
}

export const REFERENCE_SCORER_DEFAULTS = { search: null, thresholdSigmas: 4 } as const;

export class ReferenceScorer implements Scorer {
  readonly method: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly defaultThreshold: (scores: Float32Array) => number;
  private readonly search: NearestNeighbourSearch;

  constructor(
    private readonly bank: ReferenceBank,
    options: Partial<ReferenceScorerOptions> & { bankPath: string },
  ) {
    const o: ReferenceScorerOptions = { ...REFERENCE_SCORER_DEFAULTS, ...options };
    this.method = `reference:${o.bankPath}`;
    this.search = o.search ?? new JsNearestNeighbour(bank);
    this.params = {
      bank: o.bankPath,
      bankModel: bank.model,
      bankSize: bank.size,
      bankSourcePatches: bank.sourcePatches,
      dim: bank.dim,
      k: 1,
      distance: 'euclidean',
      threshold: `median + ${o.thresholdSigmas} x 1.4826 x MAD`,
    };
    this.defaultThreshold = (scores) => robustThreshold(scores, o.thresholdSigmas);
  }

  score(e: PatchEmbeddings): Float32Array {
    checkEmbeddings(e, this.bank.dim);
    if (e.count === 0) return new Float32Array(0);
    return this.search.nearest(e);
  }
}
