/**
 * Stage 3: once every batch is embedded, assemble the patch grid, score the tissue cells and write
 * the slide's result folder (heatmap.npy/json, tissue.png, overlay.png, regions.geojson,
 * summary.json last). See worker/store/result-store.ts for the layout.
 *
 * Memory: the tissue cells' embeddings are held once, as float32, for scoring
 * (tissue cells x dim x 4 bytes: 100k cells of a 1024-dim model = 400 MB); regions never are.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SafetensorsFile, readSafetensorsMetadata } from '../infer/safetensors.js';
import { TissueMap } from '../tissue/tissue-map.js';
import { parseScoreMethod } from '../score/parse-score-method.js';
import { anomalousRegions } from '../store/contours.js';
import { toQuPathGeoJson } from '../store/geojson.js';
import { renderOverlay } from '../store/overlay.js';
import { ResultStore } from '../store/result-store.js';
import type { HeatmapMeta } from '../store/heatmap-json.js';
import type { SlideFailure, SlideSummary } from '../store/summary.js';
import type { AnalysisSpec } from './analysis-spec.js';
import { partPath } from './embed-stage.js';
import { buildPatchGrid, cellOf, type PatchGrid } from './patch-grid.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import { FLASHSLIDE_VERSION } from '../util/version.js';
import sharp from 'sharp';

/** Anomalous regions smaller than this many patches (2 x 2 = 16 x 16 µm at 8 µm patches) are noise. */
export const MIN_REGION_CELLS = 4;

export interface AggregateTimings {
  planMs: number;
  readMs: number;
  inferenceMs: number;
  /** performance.now() or epoch ms when the analysis started, for the total. */
  startedAt?: number;
}

const storeFor = (spec: AnalysisSpec): { store: ResultStore; id: string } => ({
  store: new ResultStore(dirname(spec.resultDir)),
  id: basename(spec.resultDir),
});

export async function readResultSummary(spec: AnalysisSpec): Promise<SlideSummary | null> {
  const { store, id } = storeFor(spec);
  return store.readSummary(id);
}

/** Records why a slide failed. The first reason wins: later failures are usually its consequences. */
export async function writeFailure(spec: AnalysisSpec, reason: string): Promise<void> {
  const { store, id } = storeFor(spec);
  if ((await store.readFailure(id)) !== null) return;
  await store.writeFailure(id, { reason, slidePath: spec.slidePath, at: new Date().toISOString() });
}

export async function readFailure(spec: AnalysisSpec): Promise<SlideFailure | null> {
  const { store, id } = storeFor(spec);
  return store.readFailure(id);
}

/** Read and inference times recorded in the part files (queue mode, where batches ran elsewhere). */
export async function readPartTimings(plan: SlidePlan): Promise<{ readMs: number; inferenceMs: number }> {
  let readMs = 0;
  let inferenceMs = 0;
  for (let b = 0; b < plan.batches.length; b++) {
    const meta = await readSafetensorsMetadata(partPath(plan, b));
    readMs += Number(meta['readMs'] ?? 0);
    inferenceMs += Number(meta['inferMs'] ?? 0);
  }
  return { readMs, inferenceMs };
}

/** The slide's patch grid and the embedding of every scored (tissue) cell, gathered from the parts. */
export interface GatheredEmbeddings {
  grid: PatchGrid;
  /** For each grid cell: its row in `data`, or -1 when it is not scored. */
  row: Int32Array;
  count: number;
  dim: number;
  data: Float32Array;
}

export async function gatherTissueEmbeddings(plan: SlidePlan): Promise<GatheredEmbeddings> {
  const { regionPlan } = plan;
  const tissuePng = await readFile(join(workDir(plan.spec), 'tissue.png'));
  const tissue = await TissueMap.fromPng(tissuePng, plan.slide.width, plan.slide.height, plan.tissue.mode);
  const grid = buildPatchGrid(regionPlan, tissue);
  const dim = plan.model.embedDim;
  const n = grid.regionPatches;
  const row = new Int32Array(grid.rows * grid.cols).fill(-1);
  let count = 0;
  for (let cell = 0; cell < row.length; cell++) if (grid.tissue[cell] === 1) row[cell] = count++;
  const data = new Float32Array(count * dim);
  for (let b = 0; b < plan.batches.length; b++) {
    const part = await SafetensorsFile.read(partPath(plan, b));
    const regions = part.float32('regions');
    const emb = part.float32('embeddings');
    regions.forEach((r, k) => {
      for (let pr = 0; pr < n; pr++) {
        for (let pc = 0; pc < n; pc++) {
          const cell = cellOf(regionPlan, grid, r, pr, pc);
          const dst = row[cell] as number;
          // A cell takes its embedding from the region that owns it (see patch-grid.ts).
          if (dst < 0 || grid.ownerRegion[cell] !== r) continue;
          const src = ((k * n + pr) * n + pc) * dim;
          data.set(emb.subarray(src, src + dim), dst * dim);
        }
      }
    });
  }
  return { grid, row, count, dim, data };
}

export async function aggregateSlide(plan: SlidePlan, timings: AggregateTimings): Promise<SlideSummary> {
  const scoringStarted = performance.now();
  const { spec, regionPlan } = plan;
  const dir = workDir(spec);
  const tissuePng = await readFile(join(dir, 'tissue.png'));
  const { grid, row, count, dim, data } = await gatherTissueEmbeddings(plan);

  const scorer = await parseScoreMethod(spec.scoreMethod, { dim, model: spec.modelName });
  const scores = scorer.score({ count, dim, data });
  const heatmap = new Float32Array(grid.rows * grid.cols).fill(Number.NaN);
  let min = Infinity;
  let max = -Infinity;
  for (let cell = 0; cell < row.length; cell++) {
    const r = row[cell] as number;
    if (r < 0) continue;
    const s = scores[r] as number;
    heatmap[cell] = s;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  if (count === 0) {
    min = 0;
    max = 0;
  }
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
    min,
    max,
    threshold,
    createdAt: new Date().toISOString(),
    flashslideVersion: FLASHSLIDE_VERSION,
  };

  const overviewPng = await readFile(join(dir, 'overview.png'));
  const { data: thumb, info } = await sharp(overviewPng).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const overlayPng = await renderOverlay({
    thumbnail: { data: thumb, width: info.width, height: info.height },
    heatmap,
    rows: grid.rows,
    cols: grid.cols,
    min,
    max,
    threshold,
    // The grid may hang over the slide's right/bottom edge; the overlay covers the slide only.
    coverage: { width: (grid.cols * grid.cellSizeLevel0) / plan.slide.width, height: (grid.rows * grid.cellSizeLevel0) / plan.slide.height },
  });

  const sorted = Float32Array.from(scores).sort();
  const top = Math.max(1, Math.ceil(sorted.length * 0.01));
  let topSum = 0;
  for (let i = sorted.length - top; i < sorted.length; i++) topSum += sorted[i] as number;
  const anomalousCells = scores.reduce((acc, s) => acc + (s >= threshold ? 1 : 0), 0);
  const scoringMs = performance.now() - scoringStarted;
  const summary: SlideSummary = {
    slideId: spec.analysisId,
    slidePath: spec.slidePath,
    status: 'done',
    slideScore: count === 0 ? 0 : topSum / top,
    tissueCells: count,
    anomalousCells,
    regionsCount: regions.length,
    threshold,
    model: spec.modelName,
    scoreMethod: scorer.method,
    regionsAnalysed: regionPlan.regions.length,
    effectiveMpp: regionPlan.effectiveMpp,
    timings: {
      planMs: timings.planMs,
      readMs: timings.readMs,
      inferenceMs: timings.inferenceMs,
      scoringMs,
      totalMs: timings.startedAt === undefined ? scoringMs : Math.max(0, (timings.startedAt > 1e12 ? Date.now() : performance.now()) - timings.startedAt),
    },
  };
  const { store, id } = storeFor(spec);
  await store.writeResult(id, { heatmap, meta, tissuePng, overlayPng, regionsGeoJson: toQuPathGeoJson(regions), summary });
  return summary;
}
