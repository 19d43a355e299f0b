/**
 * One slide's scoring, fed batch by batch: from the part files (the queue's aggregate job, or a
 * resumed slide), or from the engine as batches finish (embedded mode, on the scoring thread).
 *
 *   fit:   the scorer learns from the fit batches (fit-batches.ts): their column sums (the mean
 *          it centres on) and a seeded sample of their rows. Taken from the batches as they
 *          arrive (fit-capture.ts) or read from their part files; the same numbers either way.
 *   score: each batch's tissue patches straight into the heatmap, as soon as the scorer is
 *          fitted; batches that arrived before are held (up to `heldBytes`) or read back later.
 *
 * Memory: the fit sample (at most 20k x dim floats), the held batches, and arrays of the
 * heatmap's size; never the slide's embeddings at once.
 */
import { parseScoreMethod } from '../score/parse-score-method.js';
import { nearestNeighbourDevice } from '../score/native-nearest-neighbour.js';
import { RowSums } from '../score/score-embeddings.js';
import type { FittedScorer, Scorer } from '../score/types.js';
import { PartFileError } from './errors.js';
import { FitCapture } from './fit-capture.js';
import { fitBatchesOf, fitUniverse } from './fit-batches.js';
import type { SlidePlan } from './plan-stage.js';
import { chunkOfBatch, gatherRows, tissueChunks, type TissueChunk } from './tissue-chunks.js';
import { cachedTissueLayout, type TissueLayout } from './tissue-layout.js';
import { partPath } from './embed-stage.js';

export interface ScoringRunOptions {
  /** BF16 bytes of batches held until the scorer is fitted; later ones are read back from their parts. */
  heldBytes: number;
  /** Called once the scorer is fitted while batches still come: every later batch is scored as it arrives. */
  onFitted: () => void;
}

const DEFAULTS: ScoringRunOptions = { heldBytes: 256 * 2 ** 20, onFitted: () => undefined };

/** Where the scoring's time went (summary.json's scoringSteps). */
export interface ScoringRunSteps {
  layoutMs: number;
  pass1Ms: number;
  fitMs: number;
  pass2Ms: number;
}

/** The scored slide, for the store step. */
export interface ScoredSlide {
  scorer: Scorer;
  layout: TissueLayout;
  /** Per grid cell, NaN outside tissue. */
  heatmap: Float32Array;
  /** Per tissue row. */
  scores: Float32Array;
  steps: ScoringRunSteps;
}

interface HeldBatch {
  cells: Int32Array;
  embeddings: Uint16Array;
}

export class ScoringRun {
  private readonly heatmap: Float32Array;
  private readonly scores: Float32Array;
  private readonly scored = new Set<number>();
  private rowsScored = 0;
  private readonly held = new Map<number, HeldBatch>();
  private heldBytes = 0;
  /** Arrived before the fit and not held: read back from their parts once fitted. */
  private readonly readBack: number[] = [];
  private fitted: FittedScorer | null = null;
  private readonly steps: ScoringRunSteps;

  private constructor(
    private readonly plan: SlidePlan,
    private readonly layout: TissueLayout,
    private readonly scorer: Scorer,
    private readonly fitRows: Int32Array,
    private readonly fitBatches: number[],
    private readonly universe: number,
    private readonly capture: FitCapture,
    layoutMs: number,
    private readonly options: ScoringRunOptions,
  ) {
    this.heatmap = new Float32Array(layout.grid.rows * layout.grid.cols).fill(Number.NaN);
    this.scores = new Float32Array(layout.count);
    this.steps = { layoutMs, pass1Ms: 0, fitMs: 0, pass2Ms: 0 };
  }

  static async start(plan: SlidePlan, options: Partial<ScoringRunOptions> = {}): Promise<ScoringRun> {
    const t0 = performance.now();
    // The embed stage built it in this process already (a worker that ran batches).
    const layout = await cachedTissueLayout(plan);
    const layoutMs = performance.now() - t0;
    const { spec } = plan;
    const scorer = await parseScoreMethod(spec.scoreMethod, { dim: layout.dim, model: spec.modelName, modelFingerprint: spec.modelFingerprint, device: nearestNeighbourDevice(spec.device) });
    const fitBatches = fitBatchesOf(plan);
    const universe = fitUniverse(plan, layout);
    const fitRows = Int32Array.from(scorer.fitRows(universe.length), (i) => universe[i] as number);
    return new ScoringRun(plan, layout, scorer, fitRows, fitBatches, universe.length, new FitCapture(layout, fitRows, fitBatches), layoutMs, { ...DEFAULTS, ...options });
  }

  /**
   * A batch as the engine returned it (its part file is written): captured for the fit, then
   * scored at once when the scorer is fitted, else held or left to be read back.
   */
  async addBatch(batch: number, cells: Int32Array, embeddings: Uint16Array, sums: Float64Array, signal?: AbortSignal): Promise<void> {
    if (this.scored.has(batch) || this.held.has(batch) || this.readBack.includes(batch)) return;
    const t = performance.now();
    this.capture.add(batch, cells, embeddings, sums);
    this.steps.pass1Ms += performance.now() - t;
    if (this.fitted !== null) {
      await this.scoreChunk(batch, chunkOfBatch(partPath(this.plan, batch), cells, embeddings, this.layout));
      return;
    }
    if (this.heldBytes + embeddings.byteLength <= this.options.heldBytes) {
      this.held.set(batch, { cells, embeddings });
      this.heldBytes += embeddings.byteLength;
    } else {
      this.readBack.push(batch);
    }
    if (this.capture.complete) {
      await this.fitAndCatchUp(signal);
      this.options.onFitted();
    }
  }

  /** Fits (from the captured batches, else from the fit batches' part files), then scores what waited. */
  private async fitAndCatchUp(signal?: AbortSignal): Promise<void> {
    await this.fit(signal);
    for (const [batch, b] of [...this.held]) {
      signal?.throwIfAborted();
      this.held.delete(batch);
      this.heldBytes -= b.embeddings.byteLength;
      await this.scoreChunk(batch, chunkOfBatch(partPath(this.plan, batch), b.cells, b.embeddings, this.layout));
    }
    await this.scoreParts(this.readBack.splice(0), signal);
  }

  private async fit(signal?: AbortSignal): Promise<void> {
    if (this.fitted !== null) return;
    const { dim } = this.layout;
    const t0 = performance.now();
    const sums = new RowSums(dim);
    const captured = this.capture.result();
    let sample: Float32Array;
    if (captured !== null) {
      sums.addTotals(captured.sums, captured.count);
      sample = captured.sample;
    } else {
      sample = await gatherRows(this.plan, this.layout, this.fitRows, sums, this.fitBatches);
    }
    if (sums.count !== this.universe) {
      throw new PartFileError(`the fit batches' part files hold ${sums.count} of their ${this.universe} tissue patches: a part is missing or stale`);
    }
    const t1 = performance.now();
    this.steps.pass1Ms += t1 - t0;
    signal?.throwIfAborted();
    this.fitted = await this.scorer.fit({ count: this.fitRows.length, dim, data: sample }, sums.statistics());
    this.steps.fitMs += performance.now() - t1;
  }

  private async scoreChunk(batch: number, chunk: TissueChunk): Promise<void> {
    const t = performance.now();
    const s = await (this.fitted as FittedScorer).scoreChunk(chunk);
    for (let i = 0; i < chunk.count; i++) {
      this.heatmap[chunk.cells[i] as number] = s[i] as number;
      this.scores[chunk.rows[i] as number] = s[i] as number;
    }
    this.scored.add(batch);
    this.rowsScored += chunk.count;
    this.steps.pass2Ms += performance.now() - t;
  }

  private async scoreParts(batches: readonly number[], signal?: AbortSignal): Promise<void> {
    if (batches.length === 0) return;
    for await (const chunk of tissueChunks(this.plan, this.layout, batches)) {
      signal?.throwIfAborted();
      await this.scoreChunk(chunk.batch, chunk);
    }
  }

  /**
   * Scores whatever has not been (every batch when nothing was streamed: the queue's aggregate
   * job), checks that every tissue patch was scored once, and hands the scores over.
   */
  async complete(signal?: AbortSignal): Promise<ScoredSlide> {
    try {
      await this.fitAndCatchUp(signal);
      await this.scoreParts(
        this.plan.batches.map((_, b) => b).filter((b) => !this.scored.has(b)),
        signal,
      );
    } finally {
      this.close();
    }
    if (this.rowsScored !== this.layout.count) {
      throw new PartFileError(`the part files hold ${this.rowsScored} of the slide's ${this.layout.count} tissue patches: a part is missing or stale`);
    }
    return { scorer: this.scorer, layout: this.layout, heatmap: this.heatmap, scores: this.scores, steps: { ...this.steps } };
  }

  /** Releases the fitted scorer (a bank on the GPU, say). */
  close(): void {
    this.fitted?.close();
  }
}
