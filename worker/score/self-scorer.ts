/**
 * `self`: how unusual a patch is among the tissue of its own slide. Needs no reference data and is
 * insensitive to a slide-wide stain shift: centering removes a constant offset and whitening removes
 * a global scale, so only a patch's position relative to its own slide's cloud matters.
 *
 *   center -> PCA to k components -> robust diagonal Mahalanobis distance in the whitened space
 *   (fit, drop the 10 % most distant, refit, score all) -> plus a small term for the energy
 *   outside the k-dimensional subspace, which catches patches unusual in directions the bulk of
 *   the tissue never varies in.
 *
 * Two phases (the Scorer protocol in types.ts): fit() learns the PCA and the robust fit from a
 * seeded sample of at most maxFitPatches patches, centred on the mean of every patch; the
 * returned scorer then scores any chunk of the slide's patches, so a slide is scored part by part.
 */
import { ScoreConfigError } from './errors.js';
import { defaultCenteredProducts, type CenteredProducts } from './centered-products.js';
import { fitPca, project, type Pca, type Projection } from './pca.js';
import { robustThreshold } from './robust-stats.js';
import { sampleIndices, seededRng } from '../util/random.js';
import { checkEmbeddings, checkFitInput, type FitStatistics, type FittedScorer, type PatchEmbeddings, type Scorer } from './types.js';

export interface SelfScorerOptions {
  /** PCA components; null = min(32, dim, count - 1), resolved per slide. */
  components: number | null;
  oversample: number;
  powerIterations: number;
  /** Fraction of the most distant fit patches left out of the second (robust) fit. */
  trimFraction: number;
  /** Weight of the out-of-subspace term; 0 turns it off. */
  residualWeight: number;
  /**
   * The PCA and the robust fit use at most this many patches (a seeded uniform sample); every patch
   * is still scored. 20k patches are 1.3 mm^2 of tissue at 8 um: a slide's tissue statistics are well
   * estimated long before its millionth patch, and the fit costs O(maxFitPatches x dim x k).
   */
  maxFitPatches: number;
  seed: number;
  /** defaultThreshold = median + thresholdSigmas x 1.4826 x MAD. */
  thresholdSigmas: number;
  /** Where the PCA's products run; null = native float32 BLAS when the addon has it, else float64 JS. */
  products: CenteredProducts | null;
}

export const SELF_SCORER_DEFAULTS: Readonly<SelfScorerOptions> = {
  components: null,
  oversample: 8,
  powerIterations: 2,
  trimFraction: 0.1,
  residualWeight: 1,
  maxFitPatches: 20_000,
  seed: 0x5e1f,
  // 3 robust sigmas: the distances of whitened embeddings have a long right tail, and 4 flagged
  // nothing even for a planted foreign texture in the top 3 % of scores (test/pipeline).
  thresholdSigmas: 3,
  products: null,
};

const MAX_DEFAULT_COMPONENTS = 32;

function validate(o: SelfScorerOptions): void {
  const bad = (what: string): never => {
    throw new ScoreConfigError(`self scorer: ${what}`);
  };
  if (o.components !== null && (!Number.isInteger(o.components) || o.components < 1)) bad(`components must be a positive integer or null (auto), got ${o.components}`);
  if (!Number.isInteger(o.oversample) || o.oversample < 0) bad(`oversample must be a non-negative integer, got ${o.oversample}`);
  if (!Number.isInteger(o.powerIterations) || o.powerIterations < 0 || o.powerIterations > 20) bad(`powerIterations must be an integer in 0..20, got ${o.powerIterations}`);
  if (!(o.trimFraction >= 0 && o.trimFraction < 0.5)) bad(`trimFraction must be in [0, 0.5), got ${o.trimFraction}`);
  if (!(o.residualWeight >= 0 && Number.isFinite(o.residualWeight))) bad(`residualWeight must be a finite number >= 0, got ${o.residualWeight}`);
  if (!Number.isInteger(o.maxFitPatches) || o.maxFitPatches < 3) bad(`maxFitPatches must be an integer >= 3, got ${o.maxFitPatches}`);
  if (!(o.thresholdSigmas > 0)) bad(`thresholdSigmas must be > 0, got ${o.thresholdSigmas}`);
}

/** Per-component location and scale plus the typical residual: what "normal" tissue looks like. */
interface DiagonalFit {
  mean: Float64Array;
  invVar: Float64Array;
  /** 1 / mean residual of the fit rows, 0 when the residual term is off or meaningless. */
  invResidual: number;
}

export class SelfScorer implements Scorer {
  readonly method = 'self';
  readonly params: Readonly<Record<string, unknown>>;
  readonly defaultThreshold: (scores: Float32Array) => number;
  private readonly options: SelfScorerOptions;
  private readonly products: CenteredProducts;

  constructor(options: Partial<SelfScorerOptions> = {}) {
    this.options = { ...SELF_SCORER_DEFAULTS, ...options };
    validate(this.options);
    const o = this.options;
    this.products = o.products ?? defaultCenteredProducts();
    this.params = {
      components: o.components ?? `auto: min(${MAX_DEFAULT_COMPONENTS}, dim, count - 1)`,
      oversample: o.oversample,
      powerIterations: o.powerIterations,
      trimFraction: o.trimFraction,
      residualWeight: o.residualWeight,
      maxFitPatches: o.maxFitPatches,
      seed: o.seed,
      products: this.products.name,
      threshold: `median + ${o.thresholdSigmas} x 1.4826 x MAD`,
    };
    this.defaultThreshold = (scores) => robustThreshold(scores, o.thresholdSigmas);
  }

  /** A seeded uniform sample of at most maxFitPatches rows (all rows when there are fewer). */
  fitRows(count: number): Int32Array {
    const o = this.options;
    return count > o.maxFitPatches ? sampleIndices(count, o.maxFitPatches, seededRng(o.seed ^ 0x9e3779b9)) : allRows(count);
  }

  async fit(sample: PatchEmbeddings, stats: FitStatistics): Promise<FittedScorer> {
    checkFitInput(sample, stats);
    const { dim } = stats;
    // Fewer than 3 patches have no "usual" to deviate from.
    if (stats.count < 3 || sample.count < 3) return constantScorer(dim);
    const o = this.options;
    const products = this.products;
    const k = Math.min(o.components ?? MAX_DEFAULT_COMPONENTS, dim, stats.count - 1);
    const pca = await fitPca(sample, stats.mean, { components: k, oversample: o.oversample, powerIterations: o.powerIterations, seed: o.seed }, products);
    const proj = await project(pca, sample, products);
    const useResidual = o.residualWeight > 0 && pca.k < dim;
    const fitRows = allRows(sample.count);
    const first = fitDiagonal(pca, proj, fitRows, useResidual, null);
    const kept = trimmed(fitRows, (r) => distance2(pca.k, proj, r, first, o.residualWeight), o.trimFraction);
    const fit = fitDiagonal(pca, proj, kept, useResidual, first);
    return {
      scoreChunk: async (chunk) => {
        checkEmbeddings(chunk, dim);
        const p = await project(pca, chunk, products);
        const out = new Float32Array(chunk.count);
        for (let i = 0; i < chunk.count; i++) out[i] = Math.sqrt(distance2(pca.k, p, i, fit, o.residualWeight));
        return out;
      },
      close: () => undefined,
    };
  }
}

/** Scores 0 for every patch: there is nothing to compare with. */
function constantScorer(dim: number): FittedScorer {
  return {
    scoreChunk: async (chunk) => {
      checkEmbeddings(chunk, dim);
      return new Float32Array(chunk.count);
    },
    close: () => undefined,
  };
}

function allRows(n: number): Int32Array {
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  return r;
}

/**
 * Mean and variance per component over `rows`. Variances are floored relative to the untrimmed
 * fit: a component whose trimmed spread is zero (it only carried the outliers) must give large,
 * finite z-scores, not Infinity or NaN.
 */
function fitDiagonal(pca: Pca, proj: Projection, rows: Int32Array, useResidual: boolean, untrimmed: DiagonalFit | null): DiagonalFit {
  const { k } = pca;
  const n = rows.length;
  const mean = new Float64Array(k);
  const variance = new Float64Array(k);
  let residual = 0;
  for (const r of rows) {
    for (let a = 0; a < k; a++) mean[a] = (mean[a] as number) + (proj.coords[r * k + a] as number);
    residual += proj.residual[r] as number;
  }
  for (let a = 0; a < k; a++) mean[a] = (mean[a] as number) / n;
  residual /= n;
  for (const r of rows) {
    for (let a = 0; a < k; a++) variance[a] = (variance[a] as number) + ((proj.coords[r * k + a] as number) - (mean[a] as number)) ** 2;
  }
  let total = residual;
  for (let a = 0; a < k; a++) {
    variance[a] = (variance[a] as number) / Math.max(1, n - 1);
    total += variance[a] as number;
  }
  const reference = untrimmed === null ? total : Math.max(total, sumInverse(untrimmed));
  const floor = Math.max(1e-12 * reference, Number.MIN_VALUE);
  const invVar = variance.map((v) => 1 / Math.max(v, floor));
  // A residual at rounding level (k close to the data's rank) would only add noise.
  const invResidual = useResidual && residual > 1e-9 * total ? 1 / residual : 0;
  return { mean, invVar, invResidual };
}

/** Total variance a fit describes, for the floor of the refit. */
function sumInverse(fit: DiagonalFit): number {
  let s = fit.invResidual > 0 ? 1 / fit.invResidual : 0;
  for (const iv of fit.invVar) s += 1 / iv;
  return s;
}

function distance2(k: number, proj: Projection, row: number, fit: DiagonalFit, residualWeight: number): number {
  let d = 0;
  for (let a = 0; a < k; a++) {
    const z = (proj.coords[row * k + a] as number) - (fit.mean[a] as number);
    d += z * z * (fit.invVar[a] as number);
  }
  return d + residualWeight * (proj.residual[row] as number) * fit.invResidual;
}

/** The rows of `rows` without the `fraction` with the largest distance (at least 2 are kept). */
function trimmed(rows: Int32Array, d2: (row: number) => number, fraction: number): Int32Array {
  const keep = Math.max(2, Math.ceil(rows.length * (1 - fraction)));
  if (keep >= rows.length) return rows;
  const dist = Float64Array.from(rows, d2);
  const order = Array.from({ length: rows.length }, (_, i) => i).sort((a, b) => (dist[a] as number) - (dist[b] as number) || a - b);
  return Int32Array.from(order.slice(0, keep), (i) => rows[i] as number).sort();
}
