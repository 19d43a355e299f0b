/**
 * Stage 1 of an analysis: open the slide, find tissue, plan the regions and split them into
 * inference batches. Writes <workDir>/{plan.json, tissue.png, overview.png}; a plan already there
 * for the same embedding id is reused, so a retried or resubmitted job does not redo it, and an
 * analysis that differs only in its score method shares the plan (and the embeddings) of the first.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSlide } from '../slide/open-slide.js';
import { OVERLAY_DEFAULTS } from '../store/overlay.js';
import { findTissue } from '../tissue/tissue-map.js';
import { planRegions, type RegionPlan } from '../regions/region-plan.js';
import { buildPatchGrid } from './patch-grid.js';
import { keptTissuePatches } from './tissue-layout.js';
import { chooseFitBatches } from './fit-batches.js';
import { writeFileAtomic, writeFileAtomicIfAbsent } from '../util/atomic-write.js';
import { slideOpenOptions, verifySlideUnchanged, type AnalysisSpec } from './analysis-spec.js';
import type { MppSource, SlideLevel } from '../slide/slide-source.js';
import type { ModelArch } from '../infer/vit-engine.js';

export interface SlidePlan {
  /** The analysis this plan is being used for (on disk: the one that made it). */
  spec: AnalysisSpec;
  embeddingId: string;
  slide: {
    width: number;
    height: number;
    mpp: number;
    mppSource: MppSource;
    vendor: string;
    backend: string;
    /** Absent in plans written before it was recorded. */
    objectivePower?: number | null;
    levels: SlideLevel[];
  };
  tissue: { mode: 'brightfield' | 'fluorescence'; fraction: number };
  model: { name: string; patchSize: number; embedDim: number; prefixTokens: number; description: string };
  regionPlan: RegionPlan;
  /** Indices into regionPlan.regions, one array per inference batch. */
  batches: number[][];
  /**
   * Batches the scorer fits on (fit-batches.ts), embedded first; absent in plans written before
   * they existed: all batches.
   */
  fitBatches?: number[];
  planMs: number;
}

export const workDir = (spec: AnalysisSpec): string => spec.workDir;
export const planPath = (spec: AnalysisSpec): string => join(workDir(spec), 'plan.json');

/** The plan of spec's embeddings, whichever analysis made it, with spec as its analysis. */
export async function readPlan(spec: AnalysisSpec): Promise<SlidePlan | null> {
  if (!existsSync(planPath(spec))) return null;
  const plan = JSON.parse(await readFile(planPath(spec), 'utf8')) as SlidePlan;
  return plan.embeddingId === spec.embeddingId ? { ...plan, spec } : null;
}

export function defaultRegionSize(patchSize: number): number {
  return Math.floor(1024 / patchSize) * patchSize;
}

/**
 * `model`: the model's architecture, or a promise of it: the tissue mask, which does not depend
 * on the model, is then computed while the model loads (seconds for a foundation model).
 */
export async function planSlide(spec: AnalysisSpec, model: ModelArch | Promise<ModelArch>, signal?: AbortSignal): Promise<SlidePlan> {
  // Awaited below, after the tissue; meanwhile a failed load must not count as unhandled.
  const archReady = Promise.resolve(model);
  archReady.catch(() => undefined);
  await verifySlideUnchanged(spec);
  signal?.throwIfAborted();
  const existing = await readPlan(spec);
  if (existing !== null) return existing;
  const started = performance.now();
  const source = await openSlide(spec.slidePath, slideOpenOptions(spec));
  try {
    const tissue = await findTissue(source);
    signal?.throwIfAborted();
    const arch = await archReady;
    const regionPlan = planRegions(source, tissue, {
      targetMpp: spec.targetMpp,
      regionSize: spec.regionSize ?? defaultRegionSize(arch.patchSize),
      overlap: spec.overlap,
      patchSize: arch.patchSize,
    });
    // With token dropping a batch is padded to its longest region: batch regions that keep
    // about as many tokens together (most first). Sorting by kept tokens rather than by tissue
    // fraction cut the padding on the 40000 px mosaic from 9.6 % to 0.8 % of the tokens run
    // (bench/NOTES.md). Otherwise in plan order (reads stay local).
    const order = regionPlan.regions.map((_, i) => i);
    if (spec.tokens === 'tissue') {
      const grid = buildPatchGrid(regionPlan, tissue);
      const kept: number[] = [];
      for (const i of order) {
        kept.push(keptTissuePatches(regionPlan, grid, i, spec.tokenMargin ?? 0).length);
        // ~0.15 ms a region: yield now and then, since the previous slide's batches are fed
        // to the engine from this thread meanwhile.
        if (i % 64 === 63) await new Promise<void>((r) => setImmediate(r));
      }
      order.sort((a, b) => (kept[b] as number) - (kept[a] as number) || a - b);
    }
    const batches: number[][] = [];
    for (let i = 0; i < order.length; i += spec.batchSize) batches.push(order.slice(i, i + spec.batchSize));
    const mpp = source.mpp as { x: number; y: number }; // planRegions has thrown if it were null
    const plan: SlidePlan = {
      spec,
      embeddingId: spec.embeddingId,
      slide: {
        width: source.width,
        height: source.height,
        mpp: (mpp.x + mpp.y) / 2,
        mppSource: source.mppSource,
        vendor: source.vendor,
        backend: source.backend,
        objectivePower: source.objectivePower,
        levels: source.levels.map((l) => ({ ...l })),
      },
      tissue: { mode: tissue.detection.mode, fraction: tissue.tissueFraction },
      model: {
        name: spec.modelName,
        patchSize: arch.patchSize,
        embedDim: arch.embedDim,
        prefixTokens: arch.numPrefixTokens,
        description: arch.description,
      },
      regionPlan,
      batches,
      fitBatches: chooseFitBatches(batches.length),
      planMs: 0,
    };
    signal?.throwIfAborted(); // an abandoned plan writes nothing
    const dir = workDir(spec);
    const writeOverview = async (): Promise<void> => {
      const ov = tissue.overview;
      if (ov === null) return;
      // Only the overlay's stand-in picture (when scoring cannot read the slide): at the
      // overlay's size, not the mask's (a 4096^2 PNG was 17 MB and a third of a second).
      const png = await sharp(ov.image.data, { raw: { width: ov.image.width, height: ov.image.height, channels: 3 } })
        .resize({ width: OVERLAY_DEFAULTS.longSide, height: OVERLAY_DEFAULTS.longSide, fit: 'inside', withoutEnlargement: true })
        .png()
        .toBuffer();
      await writeFileAtomic(join(dir, 'overview.png'), png);
    };
    await Promise.all([tissue.writePng(join(dir, 'tissue.png')), writeOverview()]);
    plan.planMs = performance.now() - started;
    // plan.json last: its presence means the whole stage is done. The first plan written wins:
    // two analyses of one slide (say, two score methods submitted together) may plan at once,
    // and the batches of the embeddings they share must not change under either.
    if (!(await writeFileAtomicIfAbsent(planPath(spec), JSON.stringify(plan)))) {
      const first = await readPlan(spec);
      if (first === null) throw new Error(`${planPath(spec)} exists but is not this slide's plan`);
      return first;
    }
    return plan;
  } finally {
    await source.close();
  }
}
