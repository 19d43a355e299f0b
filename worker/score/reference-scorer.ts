/**
 * `reference:<bank>`: distance from each patch to the nearest patch of normal reference tissue
 * (PatchCore's k = 1 score). Unlike `self`, it flags tissue that is unusual compared with normal
 * slides even when it fills most of this slide. The threshold comes from the bank (the distances
 * of normal patches held out when it was built; reference-calibration.ts), never from the slide:
 * a threshold set by the slide's own distances would call the farthest few percent of any slide
 * anomalous, even one identical to the bank, and none of a slide entirely unlike it.
 */
import type { DeviceName } from '../infer/vit-engine.js';
import type { NearestNeighbourSearch } from './nearest-neighbour.js';
import { defaultNearestNeighbourSearch } from './native-nearest-neighbour.js';
import type { ReferenceBank, ReferenceThreshold } from './reference-bank.js';
import { DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import { ScoreFileError } from './errors.js';
import { checkEmbeddings, checkFitInput, type FitStatistics, type FittedScorer, type PatchEmbeddings, type Scorer } from './types.js';

export interface ReferenceScorerOptions {
  /** Where the bank came from, recorded in `method` and `params`. */
  bankPath: string;
  /** The search; null = native (CPU BLAS or cuBLAS on `device`) when the addon is built, else JavaScript. */
  search: NearestNeighbourSearch | null;
  /** Where the default native search runs (see nearestNeighbourDevice). */
  device: DeviceName;
}

export const REFERENCE_SCORER_DEFAULTS = { search: null, device: 'cpu' } as const;

/** The bank's own threshold; a bank without one is refused (a threshold from the scored slide would mislead). */
export function bankThreshold(bank: Pick<ReferenceBank, 'threshold' | 'model'>, bankPath: string): ReferenceThreshold {
  if (bank.threshold !== null) return bank.threshold;
  throw new ScoreFileError(
    bankPath,
    `this reference bank has no threshold of its own (it was built before banks carried one, and a threshold from the scored slide would mislead): rebuild it with \`flashslide reference build <normal slides> -o ${bankPath} --model ${bank.model === DEMO_MODEL_SPEC.name ? 'demo' : `<${bank.model}.safetensors>`}\``,
  );
}

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
    const t = bankThreshold(bank, o.bankPath);
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
      threshold: `bank: ${t.quantile} quantile of the nearest-bank distances of ${t.sample} held-out normal patches = ${t.value.toPrecision(6)}`,
      thresholdValue: t.value,
      normalDistanceMedian: t.median,
    };
    this.defaultThreshold = () => t.value;
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
