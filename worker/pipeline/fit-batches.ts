/**
 * Which of a slide's batches the scorer learns "usual tissue" from. A slide of many batches is
 * fitted on a seeded sample of them (15 %, at least 16), embedded first: the fit is then ready
 * while the rest of the slide is still in the engine, and every later batch is scored as it
 * comes out (embedded mode streams the scoring; see aggregate-thread.ts). A slide of up to 16
 * batches is fitted on all of them, as before.
 *
 * Measured on the 40000 px mosaic (1534745 tissue patches, 305 batches, bench/NOTES.md): the
 * `self` score fitted on 46 batches against the same on all agrees at Spearman 0.998 with 91 %
 * of the top 1 % cells shared, closer than two seeds of the all-batch sample agree with each
 * other (0.995, 85-86 %).
 */
import { sampleIndices, seededRng } from '../util/random.js';
import type { SlidePlan } from './plan-stage.js';
import type { TissueLayout } from './tissue-layout.js';

export const FIT_BATCH_SHARE = 0.15;
export const MIN_FIT_BATCHES = 16;
const FIT_BATCH_SEED = 0xf17b;

/** Batch indices (ascending) to fit on, for a plan of `batchCount` batches. */
export function chooseFitBatches(batchCount: number): number[] {
  const k = Math.max(MIN_FIT_BATCHES, Math.ceil(FIT_BATCH_SHARE * batchCount));
  if (batchCount <= k) return Array.from({ length: batchCount }, (_, i) => i);
  return Array.from(sampleIndices(batchCount, k, seededRng(FIT_BATCH_SEED))).sort((a, b) => a - b);
}

/** The plan's fit batches; a plan written before they existed fits on all its batches. */
export function fitBatchesOf(plan: SlidePlan): number[] {
  return plan.fitBatches ?? plan.batches.map((_, i) => i);
}

/**
 * The tissue rows the fit batches' regions own, ascending: the patches the scorer's fit sample
 * is drawn from (scorer.fitRows(universe.length) indexes into it) and whose mean it centres on.
 */
export function fitUniverse(plan: SlidePlan, layout: TissueLayout): Int32Array {
  const batches = fitBatchesOf(plan);
  if (batches.length === plan.batches.length) return Int32Array.from({ length: layout.count }, (_, i) => i);
  const inFit = new Uint8Array(plan.regionPlan.regions.length);
  for (const b of batches) for (const r of plan.batches[b] ?? []) inFit[r] = 1;
  const { grid, row } = layout;
  const out: number[] = [];
  for (let cell = 0; cell < row.length; cell++) {
    const r = row[cell] as number;
    if (r >= 0 && inFit[grid.ownerRegion[cell] as number] === 1) out.push(r);
  }
  return Int32Array.from(out);
}
