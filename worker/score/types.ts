/**
 * What every scoring method consumes and produces. Embeddings are one row per tissue patch; the
 * caller keeps the mapping from rows back to grid cells, so scorers never see empty cells.
 */
import { ScoreInputError } from './errors.js';

export interface PatchEmbeddings {
  count: number;
  dim: number;
  /** count x dim, row-major. */
  data: Float32Array;
}

export interface Scorer {
  /** The spec that recreates this scorer, e.g. 'self', 'reference:/banks/uni.safetensors'. */
  readonly method: string;
  /** Everything that determined the scores, recorded beside the heatmap for reproducibility. */
  readonly params: Readonly<Record<string, unknown>>;
  /** `count` scores: higher = more anomalous (or a class probability for heads). */
  score(e: PatchEmbeddings): Float32Array;
  /** The method's own cut-off for "anomalous" given the scores it produced (score >= threshold). */
  readonly defaultThreshold: (scores: Float32Array) => number;
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
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i] as number)) {
      throw new ScoreInputError(`embedding of patch ${Math.floor(i / e.dim)} has a non-finite value (${d[i]}) at component ${i % e.dim}; the model produced NaN/Inf`);
    }
  }
}
