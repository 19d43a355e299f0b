/**
 * Stage 2: one inference batch. Reads its regions at the model's resolution (CPU), runs them
 * through the ViT as one batch, and stores the patch-token embeddings (prefix tokens dropped) as
 * <work>/parts/batch-NNNNN.safetensors: `regions` [n] (indices into the plan), `embeddings`
 * BF16 [n, patches, dim]. BF16 halves the disk and keeps 8 bits of mantissa, plenty for
 * distances between embeddings. Written atomically; a part already on disk is not recomputed,
 * so a retried or stalled-then-resumed job costs nothing twice.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readPlannedRegion } from '../regions/read-region.js';
import type { SlideSource } from '../slide/slide-source.js';
import { writeSafetensors } from '../infer/safetensors.js';
import type { VitEngine } from '../infer/vit-engine.js';
import { workDir, type SlidePlan } from './plan-stage.js';

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

/** Runs a read batch through the model and writes its part file. Returns the inference time. */
export async function embedBatch(plan: SlidePlan, engine: VitEngine, batch: RegionBatch): Promise<{ inferMs: number }> {
  const size = plan.regionPlan.regionSize;
  const n = batch.regions.length;
  const out = await engine.forward(batch.pixels, n, size, size);
  const prefix = out.prefixTokens;
  const patches = out.tokens - prefix;
  const dim = out.dim;
  // Drop the prefix tokens: the heatmap is made of patches.
  const emb = new Float32Array(n * patches * dim);
  for (let b = 0; b < n; b++) {
    emb.set(out.data.subarray((b * out.tokens + prefix) * dim, (b + 1) * out.tokens * dim), b * patches * dim);
  }
  await writeSafetensors(
    partPath(plan, batch.index),
    {
      regions: { dtype: 'F32', shape: [n], data: Float32Array.from(batch.regions) },
      embeddings: { dtype: 'BF16', shape: [n, patches, dim], data: emb },
    },
    { readMs: batch.readMs.toFixed(1), inferMs: out.millis.toFixed(1), device: engine.device },
  );
  return { inferMs: out.millis };
}
