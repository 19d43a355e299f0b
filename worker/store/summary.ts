/**
 * summary.json: one small file per slide with the numbers a worklist needs (how anomalous, how
 * much tissue, how long it took). Its presence marks a complete result; see result-store.ts.
 */
import { finiteValues, largestInPlace } from '../score/order-statistics.js';

export interface SlideTimings {
  planMs?: number;
  readMs: number;
  inferenceMs: number;
  /** Part files written (embedded mode; queue workers write them in their batch jobs). */
  writeMs?: number;
  /** Where the engine waited in the embed phase (embedded mode). */
  engineIdle?: EngineIdle;
  /** Scoring and storing the result, all of it; `scoringSteps` splits it. */
  scoringMs: number;
  scoringSteps?: ScoringSteps;
  totalMs: number;
}

/** Where the aggregate stage's time goes (see aggregate-stage.ts). */
export interface ScoringSteps {
  /** Patch grid and tissue rows. */
  layoutMs: number;
  /** Gathering the fit's input (sums and sample of the fit batches): from the batches as they came, or from their part files. */
  pass1Ms: number;
  fitMs: number;
  /** Scoring every batch into the heatmap. */
  pass2Ms: number;
  /** Threshold, regions, overlay and the result files. */
  storeMs: number;
  /**
   * Embedded mode scores batches while the slide is still embedded: the part of the scoring
   * left after the last batch (the rest overlapped the engine). Absent when nothing overlapped.
   */
  afterEmbedMs?: number;
}

export interface SlideSummary {
  slideId: string;
  slidePath?: string;
  status: 'done';
  /**
   * Mean of the top 1 % of tissue cell scores: robust to one stray cell, sensitive to a small
   * lesion. null when the slide has no tissue: nothing was scored, which is not "normal".
   */
  slideScore: number | null;
  tissueCells: number;
  anomalousCells: number;
  regionsCount: number;
  /** Infinity is written as null (JSON has no Infinity) and read back as Infinity. */
  threshold: number;
  model: string;
  scoreMethod: string;
  timings: SlideTimings;
  regionsAnalysed?: number;
  effectiveMpp?: number;
  /** Where the patch embeddings are, and how many of their batches this analysis computed (the rest it reused). */
  embeddings?: EmbeddingsReport;
  createdAt?: string;
  flashslideVersion?: string;
}

/** The engine's time in an embed phase (ms): busy, idle before its first forward, waiting for a batch's read, waiting otherwise, after its last forward. */
export interface EngineIdle {
  phaseMs: number;
  busyMs: number;
  firstMs: number;
  readMs: number;
  otherMs: number;
  tailMs: number;
}

export interface EmbeddingsReport {
  dir: string;
  batches: number;
  batchesComputed: number;
  /** Tokens the ViT computed for the batches computed (padding included; absent before 0.1 builds recorded it). */
  modelTokens?: number;
  /** The part files were deleted once the result was stored (--embeddings drop). */
  dropped?: boolean;
  /**
   * Part files written by this analysis (embedded mode). With --embeddings drop, batches the
   * scoring took as they came out of the engine were never written.
   */
  partsWritten?: number;
}

/** failure.json: why a slide has no result. */
export interface SlideFailure {
  /** The analysis id (older failures hold the result folder name here). */
  slideId: string;
  status: 'failed';
  reason: string;
  slidePath: string;
  /** ISO 8601. */
  at: string;
}

/** How a slide score reads in a log line or a table. */
export const scoreText = (score: number | null): string => (score === null ? 'no tissue' : `score ${score.toFixed(3)}`);

export const SLIDE_SCORE_TOP_FRACTION = 0.01;

/** Mean of the top 1 % (at least one) of the finite scores; null without any. */
export function slideScore(scores: ArrayLike<number>, topFraction = SLIDE_SCORE_TOP_FRACTION): number | null {
  const finite = finiteValues(scores);
  if (finite.length === 0) return null;
  // The top values by selection, summed in ascending order as a full sort would give them.
  const top = largestInPlace(finite, Math.max(1, Math.ceil(finite.length * topFraction)));
  let sum = 0;
  for (const v of top) sum += v;
  return sum / top.length;
}

/** Finite (tissue) cells and those at or above the threshold. */
export function countCells(heatmap: ArrayLike<number>, threshold: number): { tissueCells: number; anomalousCells: number } {
  let tissueCells = 0;
  let anomalousCells = 0;
  for (let i = 0; i < heatmap.length; i++) {
    const v = heatmap[i] as number;
    if (!Number.isFinite(v)) continue;
    tissueCells++;
    if (v >= threshold) anomalousCells++;
  }
  return { tissueCells, anomalousCells };
}
