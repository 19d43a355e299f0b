/**
 * Stage 2: one inference batch. Reads its regions at the model's resolution (CPU), runs them
 * through the ViT as one batch, and stores the embeddings of the patches the heatmap uses as
 * <work>/parts/batch-NNNNN.safetensors: `regions` [n] (indices into the plan), `cells` I32
 * [rows] (grid cell of each row), `embeddings` BF16 [rows, dim]: for each region, only the
 * tissue cells it owns (tissue-layout.ts), and `sums` F64 [dim], the column sums of the stored
 * (BF16) embeddings (computed by the engine, on the GPU under CUDA), so that the aggregate stage
 * gets the slide's mean without reading them all. Glass, the prefix tokens and the borders
 * another region owns are never stored: on a 40000^2 px slide that is under a third of all
 * patches, and with a 1024-dim model the parts are gigabytes. BF16 halves the disk and keeps 8
 * bits of mantissa, plenty for distances between embeddings. Written atomically; a part already on disk
 * is not recomputed, so a retried or stalled-then-resumed job costs nothing twice.
 */
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readPlannedRegion } from '../regions/read-region.js';
import type { SlideSource } from '../slide/slide-source.js';
import { writeSafetensors } from '../infer/safetensors.js';
import type { VitEngine } from '../infer/vit-engine.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import { cachedTissueLayout, keptTissuePatches, ownedTissuePatches } from './tissue-layout.js';

/** Written into every part's metadata; the aggregate stage refuses other formats (stale work folders). */
export const PART_FORMAT = '3';

export interface RegionBatch {
  readonly index: number;
  readonly regions: readonly number[];
  /** size x size RGB for each region, concatenated. */
  readonly pixels: Buffer;
  readonly readMs: number;
  /** With --tokens tissue: each region's kept patches (keptTissuePatches), read and then forwarded. */
  readonly kept?: readonly Int32Array[];
}

export const partPath = (plan: SlidePlan, batch: number): string =>
  join(workDir(plan.spec), PARTS_FOLDER, `batch-${String(batch).padStart(5, '0')}.safetensors`);

export function partExists(plan: SlidePlan, batch: number): boolean {
  return existsSync(partPath(plan, batch));
}

/** Folder of a work folder's part files: the patch embeddings, nearly all of its bytes. */
export const PARTS_FOLDER = 'parts';

/**
 * Deletes a work folder's part files (the plan, tissue mask and overview stay: reports and the
 * viewer read them). A later analysis of the same embeddings computes them again. Returns the
 * bytes freed.
 */
export async function dropEmbeddings(workFolder: string): Promise<number> {
  const dir = join(workFolder, PARTS_FOLDER);
  let bytes = 0;
  try {
    for (const f of await readdir(dir)) bytes += (await stat(join(dir, f))).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  await rm(dir, { recursive: true, force: true });
  return bytes;
}

/** Reads a batch's regions (concurrently: libvips/OpenSlide decode on the thread pool). */
export async function readBatch(plan: SlidePlan, source: SlideSource, batch: number, signal?: AbortSignal): Promise<RegionBatch> {
  const started = performance.now();
  const indices = plan.batches[batch];
  if (indices === undefined) throw new Error(`batch ${batch} is not in the plan (${plan.batches.length} batches)`);
  const size = plan.regionPlan.regionSize;
  // Token dropping: the patches each region keeps, known before the read, so that the tiles
  // under none of them are not decoded (their pixels would never reach the model).
  let kept: Int32Array[] | undefined;
  if (plan.spec.tokens === 'tissue') {
    const layout = await cachedTissueLayout(plan);
    kept = indices.map((i) => keptTissuePatches(plan.regionPlan, layout.grid, i, plan.spec.tokenMargin ?? 0));
  }
  const n = size / plan.regionPlan.patchSize;
  const images = await Promise.all(
    indices.map((i, b) => {
      const region = plan.regionPlan.regions[i];
      if (region === undefined) throw new Error(`region ${i} is not in the plan`);
      signal?.throwIfAborted();
      let mask: Uint8Array | undefined;
      if (kept !== undefined) {
        mask = new Uint8Array(n * n);
        for (const p of kept[b] as Int32Array) mask[p] = 1;
      }
      return readPlannedRegion(source, plan.regionPlan, region, mask);
    }),
  );
  signal?.throwIfAborted();
  const pixels = Buffer.alloc(indices.length * size * size * 3);
  images.forEach((img, k) => img.data.copy(pixels, k * size * size * 3));
  return { index: batch, regions: indices, pixels, readMs: performance.now() - started, ...(kept === undefined ? {} : { kept }) };
}

/** A batch through the model, its part file not yet written. */
export interface ForwardedBatch {
  readonly batch: RegionBatch;
  /** BF16 [rows, dim]: the tissue cells the batch's regions own, region by region. */
  readonly embeddings: Uint16Array;
  /** Heatmap cell of each row. */
  readonly cells: Int32Array;
  /** Column sums of the embeddings (float64). */
  readonly sums: Float64Array;
  readonly dim: number;
  readonly inferMs: number;
  readonly device: string;
  /** Tokens the model computed for the batch: images x tokens, padding of a kept batch included. */
  readonly modelTokens: number;
}

/**
 * Runs a read batch through the model, keeping only the token rows of the tissue cells each
 * region owns (selected and converted to BF16 by the engine: on the GPU, before the copy back).
 */
export async function forwardBatch(plan: SlidePlan, engine: VitEngine, batch: RegionBatch): Promise<ForwardedBatch> {
  const size = plan.regionPlan.regionSize;
  const layout = await cachedTissueLayout(plan);
  const tokens = engine.tokens(size, size);
  const prefix = engine.arch.numPrefixTokens;
  if (tokens - prefix !== layout.grid.regionPatches ** 2) {
    throw new Error(`the model gives ${tokens - prefix} patch tokens per region, the plan expects ${layout.grid.regionPatches ** 2}`);
  }
  const owned = batch.regions.map((r) => ownedTissuePatches(plan, layout, r));
  const rows = owned.reduce((a, o) => a + o.patches.length, 0);
  const tokenRows = new Int32Array(rows);
  const cells = new Int32Array(rows);
  let i = 0;
  if (plan.spec.tokens !== 'tissue') {
    owned.forEach((o, b) => {
      o.patches.forEach((p, k) => {
        tokenRows[i] = b * tokens + prefix + p;
        cells[i++] = o.cells[k] as number;
      });
    });
    const out = await engine.forwardRowsBf16(batch.pixels, batch.regions.length, size, size, tokenRows);
    return { batch, embeddings: out.data, cells, sums: out.sums, dim: out.dim, inferMs: out.millis, device: engine.device, modelTokens: out.batch * out.tokens };
  }
  // Token dropping: each region enters the model as its tissue (plus a margin) alone; its owned
  // tissue patches are among the kept ones, found in the kept output by their list position.
  const kept = batch.kept ?? batch.regions.map((r) => keptTissuePatches(plan.regionPlan, layout.grid, r, plan.spec.tokenMargin ?? 0));
  const offsets = new Int32Array(kept.length + 1);
  kept.forEach((k, b) => (offsets[b + 1] = (offsets[b] as number) + k.length));
  const patches = new Int32Array(offsets[kept.length] as number);
  kept.forEach((k, b) => patches.set(k, offsets[b] as number));
  let start = 0;
  owned.forEach((o, b) => {
    const k = kept[b] as Int32Array;
    let j = 0;
    o.patches.forEach((p, idx) => {
      while (j < k.length && k[j] !== p) j++; // both increasing; owned tissue is always kept
      if (j === k.length) throw new Error(`region ${batch.regions[b] ?? '?'}: owned patch ${p} is not among its kept patches`);
      tokenRows[i] = start + prefix + j;
      cells[i++] = o.cells[idx] as number;
    });
    start += prefix + k.length;
  });
  const out = await engine.forwardKeptRowsBf16(batch.pixels, batch.regions.length, size, size, offsets, patches, tokenRows);
  // The GPU pads every image of the batch to the longest; the CPU computes exactly start.
  const modelTokens = engine.device === 'cuda' ? out.batch * out.tokens : start;
  return { batch, embeddings: out.data, cells, sums: out.sums, dim: out.dim, inferMs: out.millis, device: engine.device, modelTokens };
}

/**
 * Writes a forwarded batch's part file. Returns the milliseconds spent, which embedded mode
 * overlaps with the next batch's forward.
 */
export async function writePart(plan: SlidePlan, forwarded: ForwardedBatch): Promise<number> {
  const started = performance.now();
  const { batch, embeddings, cells, sums, dim } = forwarded;
  await writeSafetensors(
    partPath(plan, batch.index),
    {
      regions: { dtype: 'F32', shape: [batch.regions.length], data: Float32Array.from(batch.regions) },
      cells: { dtype: 'I32', shape: [cells.length], data: cells },
      embeddings: { dtype: 'BF16', shape: [cells.length, dim], data: embeddings },
      sums: { dtype: 'F64', shape: [dim], data: sums },
    },
    { partFormat: PART_FORMAT, readMs: batch.readMs.toFixed(1), inferMs: forwarded.inferMs.toFixed(1), device: forwarded.device, modelTokens: String(forwarded.modelTokens) },
    // Not flushed to the disk: a part is a cache of the engine's output (3 GiB per 40000 px
    // slide with a ViT-L), recomputable, and checked against the plan when read. With a flush
    // per part the disk (~160 MB/s on the GPU machine) set the pace of the whole slide.
    { durable: false },
  );
  return performance.now() - started;
}

/** Runs a read batch through the model and writes its part file. */
export async function embedBatch(plan: SlidePlan, engine: VitEngine, batch: RegionBatch, signal?: AbortSignal): Promise<{ inferMs: number; writeMs: number }> {
  signal?.throwIfAborted();
  const forwarded = await forwardBatch(plan, engine, batch);
  signal?.throwIfAborted(); // an abandoned batch leaves no part: another attempt computes it
  return { inferMs: forwarded.inferMs, writeMs: await writePart(plan, forwarded) };
}
