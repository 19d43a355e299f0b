/**
 * `reference:<bank>`: distance from each patch to the nearest patch of normal reference tissue
 * (PatchCore's k = 1 score). Unlike `self`, it flags tissue that is unusual compared with normal
 * slides even when it fills most of this slide.
 */
import type { DeviceName } from '../infer/vit-engine.js';
import type { NearestNeighbourSearch } from './nearest-neighbour.js';
import { defaultNearestNeighbourSearch } from './native-nearest-neighbour.js';
import type { ReferenceBank } from './reference-bank.js';
import { robustThreshold } from './robust-stats.js';
import { checkEmbeddings, checkFitInput, type FitStatistics, type FittedScorer, type PatchEmbeddings, type Scorer } from './types.js';

export interface ReferenceScorerOptions {
  /** Where the bank came from, recorded in `method` and `params`. */
  bankPath: string;
  /** The search; null = native (CPU BLAS or cuBLAS on `device`) when the addon is built, else JavaScript. */
  search: NearestNeighbourSearch | null;
  /** Where the default native search runs (see nearestNeighbourDevice). */
  device: DeviceName;
  thresholdSigmas: number;
}

export const REFERENCE_SCORER_DEFAULTS = { search: null, device: 'cpu', thresholdSigmas: 4 } as const;

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
    this.search = o.search ?? defaultNearestNeighbourSearch(bank, o.device);
    this.params = {
      bank: o.bankPath,
      bankModel: bank.model,
      bankSize: bank.size,
      bankSourcePatches: bank.sourcePatches,
      dim: bank.dim,
      k: 1,
      distance: 'euclidean',
      search: this.search.name,
      threshold: `median + ${o.thresholdSigmas} x 1.4826 x MAD`,
    };
    this.defaultThreshold = (scores) => robustThreshold(scores, o.thresholdSigmas);
  }

  /** The bank is the model of normal tissue: nothing is learnt from the slide. */
  fitRows(): Int32Array {
    return new Int32Array(0);
  }

  async fit(sample: PatchEmbeddings, stats: FitStatistics): Promise<FittedScorer> {
    checkFitInput(sample, stats, this.bank.dim);
    const dim = this.bank.dim;
    return {
      scoreChunk: async (chunk) => {
        checkEmbeddings(chunk, dim);
        return chunk.count === 0 ? new Float32Array(0) : this.search.nearest(chunk);
      },
      close: () => this.search.close(),
    };
  }
}
