/**
 * What every scoring method consumes and produces. Embeddings are one row per tissue patch; the
 * caller keeps the mapping from rows back to grid cells, so scorers never see empty cells.
 */
import { ScoreInputError } from './errors.js';
import { arrayKernels } from '../native/array-kernels.js';

export interface PatchEmbeddings {
  count: number;
  dim: number;
  /** count x dim, row-major. */
  data: Float32Array;
}

/**
 * What a scorer learns from besides its sample: statistics over every tissue patch of the slide,
 * accumulated while the patches stream past (see worker/pipeline/aggregate-stage.ts).
 */
export interface FitStatistics {
  /** Tissue patches of the slide: all of them, not just the sample. */
  count: number;
  dim: number;
  /** Mean embedding over all `count` patches (float64 sums). */
  mean: Float64Array;
}

/** A scorer fitted to one slide: scores any part of that slide's patches, part by part. */
export interface FittedScorer {
  /** One score per row of `chunk`: higher = more anomalous (or a class probability for heads). */
  scoreChunk(chunk: PatchEmbeddings): Promise<Float32Array>;
  /** Frees native resources (a bank on the GPU) now rather than at garbage collection. */
  close(): void;
}

/**
 * Scoring in two phases, so that a slide's patches never have to be in memory at once:
 *
 *   rows = scorer.fitRows(count)             which patches the fit needs (a seeded sample)
 *   fitted = await scorer.fit(sample, stats) sample = those rows, in that order; stats over all
 *   await fitted.scoreChunk(chunk)           for every chunk of the slide's patches, any order
 *
 * Scores do not depend on how the patches are chunked (up to float32 rounding in native GEMMs).
 * `scoreEmbeddings` (score-embeddings.ts) runs the protocol on patches already in memory.
 */
export interface Scorer {
  /** The spec that recreates this scorer, e.g. 'self', 'reference:/banks/uni.safetensors'. */
  readonly method: string;
  /** Everything that determined the scores, recorded beside the heatmap for reproducibility. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Sorted indices into the slide's `count` patches that fit() must see; empty when it needs none. */
  fitRows(count: number): Int32Array;
  fit(sample: PatchEmbeddings, stats: FitStatistics): Promise<FittedScorer>;
  /** The method's own cut-off for "anomalous" given the scores it produced (score >= threshold). */
  readonly defaultThreshold: (scores: Float32Array) => number;
}

/** Checks that a fit's sample and statistics belong together. */
export function checkFitInput(sample: PatchEmbeddings, stats: FitStatistics, expectedDim?: number): void {
  checkEmbeddings(sample, expectedDim);
  if (!Number.isInteger(stats.count) || stats.count < sample.count) {
    throw new ScoreInputError(`fit statistics cover ${stats.count} patches, fewer than the ${sample.count} sampled from them`);
  }
  if (stats.dim !== sample.dim || stats.mean.length !== sample.dim) {
    throw new ScoreInputError(`fit statistics have dim ${stats.dim} (mean of ${stats.mean.length}), the sample has dim ${sample.dim}`);
  }
}

/**
 * Checks shape and finiteness once at the boundary, so the numeric code behind it can assume
 * clean input instead of quietly spreading NaN through a PCA or a nearest-neighbour search.
 */
export function checkEmbeddings(e: PatchEmbeddings, expectedDim?: number): void {
  if (!Number.isInteger(e.count) || e.count < 0) throw new ScoreInputError(`embeddings count must be a non-negative integer, got ${e.count}`);
  if (!Number.isInteger(e.dim) || e.dim < 1) throw new ScoreInputError(`embeddings dim must be a positive integer, got ${e.dim}`);
  if (e.data.length !== e.count * e.dim) {
    throw new ScoreInputError(`embeddings data has ${e.data.length} values, expected count x dim = ${e.count} x ${e.dim} = ${e.count * e.dim}`);
  }
  if (expectedDim !== undefined && e.dim !== expectedDim) {
    throw new ScoreInputError(`embeddings have dim ${e.dim}, this scorer was set up for dim ${expectedDim} (a different model?)`);
  }
  const d = e.data;
  const k = arrayKernels();
  let bad = -1;
  if (k !== null) bad = k.firstNonFinite(d);
  else for (let i = 0; i < d.length && bad < 0; i++) if (!Number.isFinite(d[i] as number)) bad = i;
  if (bad >= 0) {
    throw new ScoreInputError(`embedding of patch ${Math.floor(bad / e.dim)} has a non-finite value (${d[bad]}) at component ${bad % e.dim}; the model produced NaN/Inf`);
  }
}
