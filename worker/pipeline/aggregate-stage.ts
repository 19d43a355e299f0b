/**
 * Stage 3: score the tissue cells (scoring-run.ts) and write the slide's result folder
 * (heatmap.npy/json, tissue.png, overlay.png, regions.geojson, analysis.json, summary.json last).
 * See worker/store/result-store.ts for the layout.
 *
 * The scorer fits on the fit batches (fit-batches.ts: their column sums and a sample of their
 * rows) and then scores every part straight into the heatmap. In the queue's aggregate job both
 * come from the part files; in embedded mode the scoring thread is fed each batch as it is
 * embedded, so that only the last batches and the store are left when the engine is done.
 * Memory is the fit sample (20k x dim x 4 bytes: 80 MB for a 1024-dim model) plus per-cell
 * arrays the size of the heatmap plus a part or a few held batches; it does not grow with the
 * tissue area's embeddings. Before streaming, all tissue embeddings were gathered at once (1.5 M
 * x 192 floats on a 40000^2 px slide: 1977 MiB peak RSS).
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readSafetensorsMetadata } from '../infer/safetensors.js';
import { anomalousRegions } from '../store/contours.js';
import { toQuPathGeoJson } from '../store/geojson.js';
import { OVERLAY_DEFAULTS, renderOverlay } from '../store/overlay.js';
import { rankRegions } from '../store/ranked-regions.js';
import { openSlide } from '../slide/open-slide.js';
import { readThumbnail } from '../slide/thumbnail.js';
import type { RgbImage } from '../slide/slide-source.js';
import { ResultStore } from '../store/result-store.js';
import { scoreRange, type HeatmapMeta } from '../store/heatmap-json.js';
import { countCells, slideScore, type EngineIdle, type SlideFailure, type SlideSummary } from '../store/summary.js';
import { slideOpenOptions, verifySlideUnchanged, type AnalysisSpec } from './analysis-spec.js';
import { dropEmbeddings, partPath } from './embed-stage.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import { ScoringRun } from './scoring-run.js';
import { FLASHSLIDE_VERSION } from '../util/version.js';
import { readAnalysisRecord, validationOf, type AnalysisRecord } from '../store/analysis-record.js';
import { DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import sharp from 'sharp';

/**
 * The slide image under overlay.png, read from the slide at the figure's size. The plan's
 * overview (a few hundred pixels) stands in when the slide cannot be read here (a worker on
 * another machine without the file): a coarser picture, never a failed result.
 */
async function overlayThumbnail(plan: SlidePlan, longSide: number): Promise<RgbImage | null> {
  try {
    const source = await openSlide(plan.spec.slidePath, slideOpenOptions(plan.spec));
    try {
      return await readThumbnail(source, longSide);
    } finally {
      await source.close();
    }
  } catch {
    try {
      const { data, info } = await sharp(await readFile(join(workDir(plan.spec), 'overview.png'))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    } catch {
      return null;
    }
  }
}

/** The result's provenance (analysis.json): what a report names, from the plan and the model config. */
async function analysisRecord(plan: SlidePlan, scoreMethod: string, createdAt: string): Promise<AnalysisRecord> {
  const { spec, slide, regionPlan } = plan;
  let config: unknown = null;
  try {
    config = JSON.parse(await readFile(spec.modelConfig, 'utf8'));
  } catch {
    // The engine read it to embed; gone or changed since, it simply has no validation record.
  }
  return {
    formatVersion: 1,
    analysisId: spec.analysisId,
    embeddingId: spec.embeddingId,
    slide: {
      path: spec.slidePath,
      name: basename(spec.slidePath),
      fingerprint: spec.slideFingerprint,
      vendor: slide.vendor,
      backend: slide.backend,
      width: slide.width,
      height: slide.height,
      mpp: slide.mpp,
      mppSource: slide.mppSource,
      objectivePower: slide.objectivePower ?? null,
      levels: slide.levels.length,
    },
    model: {
      name: spec.modelName,
      weights: spec.modelWeights,
      weightsFingerprint: spec.modelFingerprint,
      config: spec.modelConfig,
      description: plan.model.description,
      patchSize: plan.model.patchSize,
      embedDim: plan.model.embedDim,
      demo: spec.modelName === DEMO_MODEL_SPEC.name,
      validation: validationOf(config),
    },
    parameters: {
      targetMpp: spec.targetMpp,
      effectiveMpp: regionPlan.effectiveMpp,
      regionSize: regionPlan.regionSize,
      overlap: spec.overlap,
      scoreMethod,
      mppOverride: spec.mpp,
      fallbackMpp: spec.fallbackMpp,
    },
    tissue: plan.tissue,
    createdAt,
    flashslideVersion: FLASHSLIDE_VERSION,
  };
}

/** Anomalous regions smaller than this many patches (2 x 2 = 16 x 16 µm at 8 µm patches) are noise. */
export const MIN_REGION_CELLS = 4;

export interface AggregateTimings {
  planMs: number;
  readMs: number;
  inferenceMs: number;
  /** Writing the part files (selecting tissue patches, BF16, write), when this process did it. */
  writeMs?: number;
  /** Tokens the model computed (padding included), over the batches this analysis ran. */
  modelTokens?: number;
  /** Part files this analysis wrote (embedded mode). */
  partsWritten?: number;
  /** Where the engine waited during the embed phase (embedded mode). */
  engineIdle?: EngineIdle;
  /** performance.now() or epoch ms when the analysis started, for the total. */
  startedAt?: number;
}

const storeFor = (spec: AnalysisSpec): { store: ResultStore; id: string } => ({
  store: new ResultStore(dirname(spec.resultDir)),
  id: basename(spec.resultDir),
});

/**
 * The finished result of this analysis, or null. A result whose analysis.json names other slide
 * content than the spec (filed before fingerprints were checked at every stage) is not this
 * analysis's result: null, so it is recomputed rather than served.
 */
export async function readResultSummary(spec: AnalysisSpec): Promise<SlideSummary | null> {
  const { store, id } = storeFor(spec);
  const summary = await store.readSummary(id);
  if (summary === null) return null;
  const record = await readAnalysisRecord(spec.resultDir).catch(() => null);
  return record !== null && record.slide.fingerprint !== spec.slideFingerprint ? null : summary;
}

/** Records why a slide failed. The first reason wins: later failures are usually its consequences. */
export async function writeFailure(spec: AnalysisSpec, reason: string): Promise<void> {
  const { store, id } = storeFor(spec);
  if ((await store.readFailure(id)) !== null) return;
  await store.writeFailure(id, { reason, slidePath: spec.slidePath, at: new Date().toISOString(), analysisId: spec.analysisId });
}

export async function readFailure(spec: AnalysisSpec): Promise<SlideFailure | null> {
  const { store, id } = storeFor(spec);
  return store.readFailure(id);
}

/** Read and inference times recorded in the given batches' part files (queue mode, where batches ran elsewhere). */
export async function readPartTimings(plan: SlidePlan, batches: readonly number[]): Promise<{ readMs: number; inferenceMs: number; modelTokens: number }> {
  let modelTokens = 0;
  let readMs = 0;
  let inferenceMs = 0;
  for (const b of batches) {
    const meta = await readSafetensorsMetadata(partPath(plan, b));
    readMs += Number(meta['readMs'] ?? 0);
    inferenceMs += Number(meta['inferMs'] ?? 0);
    modelTokens += Number(meta['modelTokens'] ?? 0);
  }
  return { readMs, inferenceMs, modelTokens };
}

/**
 * Scores the slide and writes its result folder. batchesComputed: how many of the plan's batches
 * the embed stage ran for this analysis (the others' part files were already there, e.g. from an
 * analysis with another score method). `streamed`: the scoring that has been fed the batches as
 * they were embedded (what is left of it runs now); without it every part file is read (the
 * queue's aggregate job).
 */
export async function aggregateSlide(plan: SlidePlan, timings: AggregateTimings, batchesComputed: number, signal?: AbortSignal, streamed?: ScoringRun): Promise<SlideSummary> {
  const scoringStarted = performance.now();
  const { spec, regionPlan } = plan;
  const dir = workDir(spec);
  const tissuePng = await readFile(join(dir, 'tissue.png'));
  const run = streamed ?? (await ScoringRun.start(plan));
  const { scorer, layout, heatmap, scores, steps } = await run.complete(signal);
  const { grid, count } = layout;
  const tScored = performance.now();
  const range = scoreRange(scores);
  const score = slideScore(scores);
  const threshold = count === 0 ? Infinity : scorer.defaultThreshold(scores);
  const regions = anomalousRegions(heatmap, grid.rows, grid.cols, threshold, {
    originX: grid.originX,
    originY: grid.originY,
    cellSize: grid.cellSizeLevel0,
    mpp: plan.slide.mpp,
    minCells: MIN_REGION_CELLS,
  });

  const meta: HeatmapMeta = {
    formatVersion: 1,
    slideId: spec.analysisId,
    slidePath: spec.slidePath,
    width: plan.slide.width,
    height: plan.slide.height,
    mpp: plan.slide.mpp,
    rows: grid.rows,
    cols: grid.cols,
    patchSizeLevel0: grid.cellSizeLevel0,
    originX: grid.originX,
    originY: grid.originY,
    regionSize: regionPlan.regionSize,
    model: spec.modelName,
    scoreMethod: scorer.method,
    scoreParams: scorer.params,
    min: range?.min ?? null,
    max: range?.max ?? null,
    threshold,
    createdAt: new Date().toISOString(),
    flashslideVersion: FLASHSLIDE_VERSION,
  };

  const regionsGeoJson = toQuPathGeoJson(regions);
  const overlayPng = await renderOverlay({
    slideWidth: plan.slide.width,
    slideHeight: plan.slide.height,
    thumbnail: await overlayThumbnail(plan, OVERLAY_DEFAULTS.longSide),
    heatmap: { grid: heatmap, meta },
    tissuePng,
    regions: rankRegions(regionsGeoJson),
    title: basename(spec.slidePath),
    subtitle: `${spec.modelName}${spec.modelName === DEMO_MODEL_SPEC.name ? ' (demo model, random weights: not diagnostic)' : ''} · score ${scorer.method} · slide score ${range === null ? 'none (no tissue)' : (score ?? 0).toFixed(3)} · ${regions.length} anomalous region${regions.length === 1 ? '' : 's'}`,
  });

  const { anomalousCells } = countCells(scores, threshold);
  // Streamed, the scoring idled between batches while the engine worked: count its own work.
  const storeMs = performance.now() - tScored;
  const scoringMs = streamed === undefined ? performance.now() - scoringStarted : steps.layoutMs + steps.pass1Ms + steps.fitMs + steps.pass2Ms + storeMs;
  const summary: SlideSummary = {
    slideId: spec.analysisId,
    slidePath: spec.slidePath,
    status: 'done',
    slideScore: score,
    tissueCells: count,
    anomalousCells,
    regionsCount: regions.length,
    threshold,
    model: spec.modelName,
    scoreMethod: scorer.method,
    regionsAnalysed: regionPlan.regions.length,
    effectiveMpp: regionPlan.effectiveMpp,
    embeddings: {
      dir: spec.workDir,
      batches: plan.batches.length,
      batchesComputed,
      ...(timings.modelTokens === undefined ? {} : { modelTokens: timings.modelTokens }),
      ...(timings.partsWritten === undefined ? {} : { partsWritten: timings.partsWritten }),
      ...(spec.embeddings === 'drop' ? { dropped: true } : {}),
    },
    timings: {
      planMs: timings.planMs,
      readMs: timings.readMs,
      inferenceMs: timings.inferenceMs,
      ...(timings.writeMs === undefined ? {} : { writeMs: timings.writeMs }),
      ...(timings.engineIdle === undefined ? {} : { engineIdle: timings.engineIdle }),
      scoringMs,
      scoringSteps: {
        ...steps,
        storeMs,
        ...(streamed === undefined ? {} : { afterEmbedMs: performance.now() - scoringStarted }),
      },
      totalMs: timings.startedAt === undefined ? scoringMs : Math.max(0, (timings.startedAt > 1e12 ? Date.now() : performance.now()) - timings.startedAt),
    },
  };
  const analysis = await analysisRecord(plan, scorer.method, meta.createdAt);
  // The file may have been rewritten while its batches were read: never file such a result.
  await verifySlideUnchanged(spec);
  signal?.throwIfAborted(); // an abandoned scoring files nothing
  const { store, id } = storeFor(spec);
  await store.writeResult(id, { heatmap, meta, tissuePng, overlayPng, regionsGeoJson, analysis, summary });
  // Only once the result is stored: a failed store leaves the embeddings for the retry.
  if (spec.embeddings === 'drop') await dropEmbeddings(spec.workDir);
  return summary;
}
