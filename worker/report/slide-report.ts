/**
 * Everything a report says about one analysed slide, gathered from its result folder: the
 * identity and provenance (analysis.json, or for results made before it existed the plan in the
 * work folder), the slide-level numbers (summary.json, heatmap.json), the ranked regions
 * (regions.geojson) and the pathologist's verdicts (review.json). Every export format is a view of
 * this one object, so the PDF, the CSV, the JSON and the GeoJSON never disagree.
 *
 * A failed slide loads too: its report says why it failed instead of being skipped.
 * The heatmap grid itself is not loaded here (a batch CSV over a hundred results needs none of
 * it); readReportHeatmap reads it for the PDF.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { SlidePlan } from '../pipeline/plan-stage.js';
import { DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import { readAnalysisRecord, type AnalysisRecord, type ModelValidation } from '../store/analysis-record.js';
import { CorruptResultError } from '../store/errors.js';
import { readJsonFile } from '../store/json-file.js';
import type { GeoJsonMultiPolygon, GeoJsonPolygon } from '../store/geojson.js';
import { parseHeatmapMeta, type HeatmapMeta } from '../store/heatmap-json.js';
import { decodeNpyFloat32 } from '../store/npy.js';
import { rankRegions, readRegionFeatures } from '../store/ranked-regions.js';
import { RESULT_FILES } from '../store/result-store.js';
import type { RankedRegion, RegionReview, ReviewState } from '../store/result-types.js';
import { readReviewFile, reviewState, toReview } from '../store/review-file.js';
import type { SlideFailure, SlideSummary, SlideTimings } from '../store/summary.js';

/** Version of the JSON report and of this object's shape. */
export const REPORT_FORMAT_VERSION = 1;

export interface ReportRegion extends RankedRegion {
  areaMm2: number;
  /** Centroid in µm from the slide's top-left corner (level-0 pixels x mpp). */
  centroidUm: [number, number];
  /** The region as stored in regions.geojson (outer rings and holes), level-0 pixels. */
  geometry: GeoJsonPolygon | GeoJsonMultiPolygon;
  /** The pathologist's current verdict, with its history; null while the region is open. */
  review: RegionReview | null;
}

export interface ReportReview {
  state: ReviewState;
  /** Regions with a verdict, of total. */
  reviewed: number;
  total: number;
  confirmed: number;
  rejected: number;
  unsure: number;
  /** review.json's version (0: never reviewed). */
  version: number;
  /** Who gave the latest verdict, and when; null without any. */
  lastReviewer: string | null;
  lastAt: string | null;
}

export interface SlideReport {
  analysisId: string;
  /** Absolute path of the result folder; its name names the report files. */
  resultDir: string;
  /** The slide's file name. */
  name: string;
  slidePath: string;
  status: 'done' | 'failed';
  /** Why a failed slide has no result. */
  failure: { reason: string; at: string } | null;
  /** What is known of the slide; null fields were not recorded (older results, failures). */
  slide: {
    fingerprint: string | null;
    vendor: string | null;
    backend: string | null;
    width: number | null;
    height: number | null;
    /** µm per level-0 pixel the analysis used. */
    mpp: number | null;
    mppSource: string | null;
    objectivePower: number | null;
    levels: number | null;
  };
  model: {
    name: string;
    weightsFingerprint: string | null;
    description: string | null;
    demo: boolean;
    validation: ModelValidation | null;
  } | null;
  /**
   * False when the output must not be read as a diagnosis: the demo model, or a model without a
   * validation record (see analysis-record.ts). Reports then carry a banner saying so.
   */
  diagnostic: boolean;
  scoring: {
    method: string;
    params: Readonly<Record<string, unknown>>;
    /** Cells with score >= threshold are anomalous; null when the method set none. */
    threshold: number | null;
    min: number | null;
    max: number | null;
  } | null;
  parameters: AnalysisRecord['parameters'] | null;
  result: {
    /** Mean of the top 1 % of tissue cell scores; null: no tissue. */
    slideScore: number | null;
    threshold: number | null;
    tissueCells: number;
    anomalousCells: number;
    /** Side of one heatmap cell in µm. */
    cellUm: number;
    tissueAreaMm2: number;
    /** Area of the cells at or above the threshold (regions drop groups smaller than a few cells). */
    anomalousAreaMm2: number;
    /** anomalousAreaMm2 / tissueAreaMm2 x 100; null without tissue. */
    anomalousPercent: number | null;
    regionsCount: number;
    regionsAnalysed: number | null;
  } | null;
  timings: SlideTimings | null;
  /** When the result was made (ISO 8601). */
  createdAt: string | null;
  flashslideVersion: string | null;
  review: ReportReview;
  /** Ranked, highest maximum score first; rejected regions stay, marked by their verdict. */
  regions: ReportRegion[];
  /** Where identity and parameters were read from. */
  provenance: 'analysis.json' | 'plan.json' | 'result only';
}

/** The plan in the work folder, for results made before analysis.json existed. */
async function planOf(summary: SlideSummary | null): Promise<SlidePlan | null> {
  const dir = summary?.embeddings?.dir;
  if (dir === undefined) return null;
  try {
    return await readJsonFile<SlidePlan>(join(dir, 'plan.json'));
  } catch {
    return null; // the work folder is a cache; a broken one just means less provenance
  }
}

function emptyReview(total: number): ReportReview {
  return { state: 'not-started', reviewed: 0, total, confirmed: 0, rejected: 0, unsure: 0, version: 0, lastReviewer: null, lastAt: null };
}

const finiteOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Loads the report of the result in `resultDir` (done or failed). Throws when it holds neither. */
export async function loadSlideReport(resultDir: string): Promise<SlideReport> {
  const summaryRaw = await readJsonFile<SlideSummary & { threshold: number | null }>(join(resultDir, RESULT_FILES.summary));
  if (summaryRaw === null || summaryRaw.status !== 'done') {
    const failure = await readJsonFile<SlideFailure>(join(resultDir, RESULT_FILES.failure));
    if (failure === null || failure.status !== 'failed') {
      throw new CorruptResultError(resultDir, 'holds neither a finished result (summary.json) nor a failure (failure.json): the slide is still being analysed, or its analysis was interrupted');
    }
    return failedReport(resultDir, failure);
  }
  const summary: SlideSummary = { ...summaryRaw, threshold: summaryRaw.threshold ?? Infinity };
  const metaPath = join(resultDir, RESULT_FILES.meta);
  const meta = parseHeatmapMeta(await readFile(metaPath, 'utf8'), metaPath);
  const [record, features, reviewFile] = await Promise.all([readAnalysisRecord(resultDir), readRegionFeatures(resultDir), readReviewFile(resultDir)]);
  const plan = record === null ? await planOf(summary) : null;

  const mpp = meta.mpp;
  const ranked = rankRegions(features);
  const geometryById = new Map(features.features.map((f) => [String(f.id), f.geometry]));
  const review = toReview(reviewFile, ranked.map((r) => r.id));
  const regions: ReportRegion[] = ranked.map((r) => ({
    ...r,
    areaMm2: r.areaUm2 / 1e6,
    centroidUm: [r.centroid[0] * mpp, r.centroid[1] * mpp],
    geometry: geometryById.get(r.id) as GeoJsonPolygon | GeoJsonMultiPolygon,
    review: review.regions[r.id] ?? null,
  }));

  const cellUm = meta.patchSizeLevel0 * mpp;
  const cellMm2 = (cellUm / 1000) ** 2;
  const tissueAreaMm2 = summary.tissueCells * cellMm2;
  const anomalousAreaMm2 = summary.anomalousCells * cellMm2;
  const threshold = finiteOrNull(summary.threshold);

  const modelName = record?.model.name ?? plan?.spec.modelName ?? summary.model;
  const demo = record?.model.demo ?? modelName === DEMO_MODEL_SPEC.name;
  const validation = record?.model.validation ?? null;
  return {
    analysisId: summary.slideId,
    resultDir,
    name: basename(meta.slidePath),
    slidePath: meta.slidePath,
    status: 'done',
    failure: null,
    slide: {
      fingerprint: record?.slide.fingerprint ?? plan?.spec.slideFingerprint ?? null,
      vendor: record?.slide.vendor ?? plan?.slide.vendor ?? null,
      backend: record?.slide.backend ?? plan?.slide.backend ?? null,
      width: meta.width,
      height: meta.height,
      mpp,
      mppSource: record?.slide.mppSource ?? plan?.slide.mppSource ?? null,
      objectivePower: record?.slide.objectivePower ?? plan?.slide.objectivePower ?? null,
      levels: record?.slide.levels ?? plan?.slide.levels.length ?? null,
    },
    model: {
      name: modelName,
      weightsFingerprint: record?.model.weightsFingerprint ?? plan?.spec.modelFingerprint ?? null,
      description: record?.model.description ?? plan?.model.description ?? null,
      demo,
      validation,
    },
    diagnostic: !demo && validation !== null,
    scoring: { method: meta.scoreMethod, params: meta.scoreParams, threshold: finiteOrNull(meta.threshold), min: meta.min, max: meta.max },
    parameters: record?.parameters ?? null,
    result: {
      slideScore: summary.slideScore,
      threshold,
      tissueCells: summary.tissueCells,
      anomalousCells: summary.anomalousCells,
      cellUm,
      tissueAreaMm2,
      anomalousAreaMm2,
      anomalousPercent: summary.tissueCells > 0 ? (100 * summary.anomalousCells) / summary.tissueCells : null,
      regionsCount: ranked.length,
      regionsAnalysed: summary.regionsAnalysed ?? null,
    },
    timings: summary.timings,
    createdAt: summary.createdAt ?? meta.createdAt,
    flashslideVersion: summary.flashslideVersion ?? meta.flashslideVersion,
    review: reportReview(regions, review.version),
    regions,
    provenance: record !== null ? 'analysis.json' : plan !== null ? 'plan.json' : 'result only',
  };
}

function reportReview(regions: readonly ReportRegion[], version: number): ReportReview {
  const out = emptyReview(regions.length);
  out.version = version;
  for (const r of regions) {
    if (r.review === null) continue;
    out.reviewed++;
    out[r.review.verdict]++;
    if (out.lastAt === null || r.review.at > out.lastAt) {
      out.lastAt = r.review.at;
      out.lastReviewer = r.review.reviewer || null;
    }
  }
  out.state = reviewState(out.reviewed, out.total);
  return out;
}

/** The report of a slide without a result: identity and why (failure.json, or a result that cannot be read). */
export function failedReport(resultDir: string, failure: Pick<SlideFailure, 'slideId' | 'slidePath' | 'reason' | 'at'>): SlideReport {
  return {
    analysisId: failure.slideId,
    resultDir,
    name: basename(failure.slidePath),
    slidePath: failure.slidePath,
    status: 'failed',
    failure: { reason: failure.reason, at: failure.at },
    slide: { fingerprint: null, vendor: null, backend: null, width: null, height: null, mpp: null, mppSource: null, objectivePower: null, levels: null },
    model: null,
    diagnostic: false,
    scoring: null,
    parameters: null,
    result: null,
    timings: null,
    createdAt: failure.at,
    flashslideVersion: null,
    review: emptyReview(0),
    regions: [],
    provenance: 'result only',
  };
}

/** The heatmap grid and its geometry (for the PDF's figures). */
export async function readReportHeatmap(report: SlideReport): Promise<{ grid: Float32Array; meta: HeatmapMeta }> {
  const metaPath = join(report.resultDir, RESULT_FILES.meta);
  const npyPath = join(report.resultDir, RESULT_FILES.heatmap);
  const [metaText, npy] = await Promise.all([readFile(metaPath, 'utf8'), readFile(npyPath)]);
  const meta = parseHeatmapMeta(metaText, metaPath);
  const { data, shape } = decodeNpyFloat32(npy);
  if (shape.length !== 2 || shape[0] !== meta.rows || shape[1] !== meta.cols) {
    throw new CorruptResultError(npyPath, `has shape [${shape.join(', ')}], heatmap.json says [${meta.rows}, ${meta.cols}]`);
  }
  return { grid: data, meta };
}
