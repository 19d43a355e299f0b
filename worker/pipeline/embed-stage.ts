/**
 * Stage 2: one inference batch. Reads its regions at the model's resolution (CPU), runs them
 * through the ViT as one batch, and stores the embeddings of the patches the heatmap uses as
 * <work>/parts/batch-NNNNN.safetensors: `regions` [n] (indices into the plan), `cells` I32
 * [rows] (grid cell of each row) and `embeddings` BF16 [rows, dim]: for each region, only the
 * tissue cells it owns (tissue-layout.ts). Glass, the prefix tokens and the borders another
 * region owns are never stored: on a 40000^2 px slide that is under a third of all patches, and
 * with a 1024-dim model the parts are gigabytes. BF16 halves the disk and keeps 8 bits of
 * mantissa, plenty for distances between embeddings. Written atomically; a part already on disk
 * is not recomputed, so a retried or stalled-then-resumed job costs nothing twice.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readPlannedRegion } from '../regions/read-region.js';
import type { SlideSource } from '../slide/slide-source.js';
import { writeSafetensors } from '../infer/safetensors.js';
import { gatherRowsToBf16 } from '../infer/bf16.js';
import type { EmbeddingBatch, VitEngine } from '../infer/vit-engine.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import { cachedTissueLayout, ownedTissuePatches, type TissueLayout } from './tissue-layout.js';

/** Written into every part's metadata; the aggregate stage refuses other formats (stale work folders). */
export const PART_FORMAT = '2';

export interface RegionBatch {
  readonly index: number;
  readonly regions: readonly number[];
  /** size x size RGB for each region, concatenated. */
  readonly pixels: Buffer;
  readonly readMs: number;
}

export const partPath = (plan: SlidePlan, batch: number): string =>
  join(workDir(plan.spec), 'parts', `batch-${String(batch).padStart(5, '0')}.safetensors`);

export function partExists(plan: SlidePlan, batch: number): boolean {
  return existsSync(partPath(plan, batch));
}

/** Reads a batch's regions (concurrently: libvips/OpenSlide decode on the thread pool). */
export async function readBatch(plan: SlidePlan, source: SlideSource, batch: number): Promise<RegionBatch> {
  const started = performance.now();
  const indices = plan.batches[batch];
  if (indices === undefined) throw new Error(`batch ${batch} is not in the plan (${plan.batches.length} batches)`);
  const size = plan.regionPlan.regionSize;
  const images = await Promise.all(
    indices.map((i) => {
      const region = plan.regionPlan.regions[i];
      if (region === undefined) throw new Error(`region ${i} is not in the plan`);
      return readPlannedRegion(source, plan.regionPlan, region);
    }),
  );
  const pixels = Buffer.alloc(indices.length * size * size * 3);
  images.forEach((img, k) => img.data.copy(pixels, k * size * size * 3));
  return { index: batch, regions: indices, pixels, readMs: performance.now() - started };
}

/** A batch through the model, its part file not yet written. */
export interface ForwardedBatch {
  readonly batch: RegionBatch;
  readonly out: EmbeddingBatch;
  readonly layout: TissueLayout;
  readonly device: string;
}

/** Runs a read batch through the model (and has the slide's tissue layout ready for writePart). */
export async function forwardBatch(plan: SlidePlan, engine: VitEngine, batch: RegionBatch): Promise<ForwardedBatch> {
  const size = plan.regionPlan.regionSize;
  const [out, layout] = await Promise.all([engine.forward(batch.pixels, batch.regions.length, size, size), cachedTissueLayout(plan)]);
  if (out.tokens - out.prefixTokens !== layout.grid.regionPatches ** 2) {
    throw new Error(`the model gave ${out.tokens - out.prefixTokens} patch tokens per region, the plan expects ${layout.grid.regionPatches ** 2}`);
  }
  return { batch, out, layout, device: engine.device };
}

/**
 * Writes a forwarded batch's part file: the tissue cells each region owns, BF16. Returns the
 * milliseconds spent (selecting, converting, writing), which embedded mode overlaps with the
 * next batch's forward.
 */
export async function writePart(plan: SlidePlan, forwarded: ForwardedBatch): Promise<number> {
  const started = performance.now();
  const { batch, out, layout } = forwarded;
  const n = batch.regions.length;
  const prefix = out.prefixTokens;
  const dim = out.dim;
  const owned = batch.regions.map((r) => ownedTissuePatches(plan, layout, r));
  const rows = owned.reduce((a, o) => a + o.patches.length, 0);
  // Token rows of the forward's output to keep, and their cells; then select + BF16 in one pass.
  const tokenRows = new Int32Array(rows);
  const cells = new Int32Array(rows);
  let i = 0;
  owned.forEach((o, b) => {
    o.patches.forEach((p, k) => {
      tokenRows[i] = b * out.tokens + prefix + p;
      cells[i++] = o.cells[k] as number;
    });
  });
  const emb = new Uint16Array(rows * dim);
  gatherRowsToBf16(out.data, tokenRows, dim, emb);
  await writeSafetensors(
    partPath(plan, batch.index),
    {
      regions: { dtype: 'F32', shape: [n], data: Float32Array.from(batch.regions) },
      cells: { dtype: 'I32', shape: [rows], data: cells },
      embeddings: { dtype: 'BF16', shape: [rows, dim], data: emb },
    },
    { partFormat: PART_FORMAT, readMs: batch.readMs.toFixed(1), inferMs: out.millis.toFixed(1), device: forwarded.device },
  );
  return performance.now() - started;
}

/** Runs a read batch through the model and writes its part file. */
export async function embedBatch(plan: SlidePlan, engine: VitEngine, batch: RegionBatch): Promise<{ inferMs: number; writeMs: number }> {
  const forwarded = await forwardBatch(plan, engine, batch);
  return { inferMs: forwarded.out.millis, writeMs: await writePart(plan, forwarded) };
}
