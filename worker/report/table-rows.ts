/**
 * The two tables every text export shares: one row per anomalous region, and one row per slide
 * of a batch. The CSV writes these rows as they are and the JSON report nests the same rows, so a
 * column means the same thing in both.
 */
import type { ReviewState, Verdict } from '../store/result-types.js';
import type { CsvValue } from './csv.js';
import type { SlideReport } from './slide-report.js';

export interface RegionRow {
  slide: string;
  analysis_id: string;
  rank: number;
  region_id: string;
  name: string;
  score_max: number;
  score_mean: number;
  area_um2: number;
  area_mm2: number;
  cells: number;
  centroid_x_px: number;
  centroid_y_px: number;
  centroid_x_um: number;
  centroid_y_um: number;
  /** Bounds of the outline, level-0 pixels. */
  bbox_x_px: number;
  bbox_y_px: number;
  bbox_width_px: number;
  bbox_height_px: number;
  /** The same bounds in µm from the slide's top-left corner (pixels x mpp). */
  bbox_x_um: number;
  bbox_y_um: number;
  bbox_width_um: number;
  bbox_height_um: number;
  /** Empty while the region is open (not reviewed). */
  verdict: Verdict | null;
  note: string | null;
  reviewer: string | null;
  /** ISO 8601 time of the verdict. */
  reviewed_at: string | null;
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

export function regionRows(report: SlideReport): RegionRow[] {
  // A done slide always has its mpp (analysis needs it); the µm bounds follow the centroid's.
  const mpp = report.slide.mpp ?? Number.NaN;
  return report.regions.map((r) => ({
    slide: report.name,
    analysis_id: report.analysisId,
    rank: r.rank,
    region_id: r.id,
    name: r.name,
    score_max: r.scoreMax,
    score_mean: r.scoreMean,
    area_um2: round(r.areaUm2, 3),
    area_mm2: round(r.areaMm2, 6),
    cells: r.cells,
    centroid_x_px: round(r.centroid[0], 1),
    centroid_y_px: round(r.centroid[1], 1),
    centroid_x_um: round(r.centroidUm[0], 1),
    centroid_y_um: round(r.centroidUm[1], 1),
    bbox_x_px: r.bbox[0],
    bbox_y_px: r.bbox[1],
    bbox_width_px: r.bbox[2],
    bbox_height_px: r.bbox[3],
    bbox_x_um: round(r.bbox[0] * mpp, 1),
    bbox_y_um: round(r.bbox[1] * mpp, 1),
    bbox_width_um: round(r.bbox[2] * mpp, 1),
    bbox_height_um: round(r.bbox[3] * mpp, 1),
    verdict: r.review?.verdict ?? null,
    note: r.review?.note ?? null,
    reviewer: r.review?.reviewer ?? null,
    reviewed_at: r.review?.at ?? null,
  }));
}

/** Slide states a batch row can have: the two with a report, and the two without one yet. */
export type BatchStatus = 'done' | 'failed' | 'queued' | 'running';

export interface BatchRow {
  slide: string;
  analysis_id: string;
  status: BatchStatus;
  slide_score: number | null;
  threshold: number | null;
  anomalous_regions: number | null;
  tissue_area_mm2: number | null;
  anomalous_area_mm2: number | null;
  anomalous_percent: number | null;
  review_state: ReviewState | null;
  reviewed: number | null;
  confirmed: number | null;
  rejected: number | null;
  unsure: number | null;
  model: string | null;
  score_method: string | null;
  /** False: demo model or no validation record; the output is not diagnostic. */
  diagnostic: boolean | null;
  created_at: string | null;
  /** Failed slides: why; queued or running ones: that there is no result yet. */
  reason: string | null;
  /** The slide's report file in this batch (empty when it has none). */
  report_file: string | null;
  slide_path: string;
}

export function batchRow(report: SlideReport, reportFile: string | null): BatchRow {
  const r = report.result;
  return {
    slide: report.name,
    analysis_id: report.analysisId,
    status: report.status,
    slide_score: r?.slideScore ?? null,
    threshold: r?.threshold ?? null,
    anomalous_regions: r?.regionsCount ?? null,
    tissue_area_mm2: r === null ? null : round(r.tissueAreaMm2, 4),
    anomalous_area_mm2: r === null ? null : round(r.anomalousAreaMm2, 4),
    anomalous_percent: r?.anomalousPercent == null ? null : round(r.anomalousPercent, 3),
    review_state: report.status === 'done' ? report.review.state : null,
    reviewed: report.status === 'done' ? report.review.reviewed : null,
    confirmed: report.status === 'done' ? report.review.confirmed : null,
    rejected: report.status === 'done' ? report.review.rejected : null,
    unsure: report.status === 'done' ? report.review.unsure : null,
    model: report.model?.name ?? null,
    score_method: report.scoring?.method ?? null,
    diagnostic: report.status === 'done' ? report.diagnostic : null,
    created_at: report.createdAt,
    reason: report.failure?.reason ?? null,
    report_file: reportFile,
    slide_path: report.slidePath,
  };
}

/** A slide named in a batch that has no result yet: a row that says so, never a silent gap. */
export function pendingRow(entry: { name: string; analysisId: string; slidePath: string; status: 'queued' | 'running'; reason: string }): BatchRow {
  return {
    slide: entry.name,
    analysis_id: entry.analysisId,
    status: entry.status,
    slide_score: null,
    threshold: null,
    anomalous_regions: null,
    tissue_area_mm2: null,
    anomalous_area_mm2: null,
    anomalous_percent: null,
    review_state: null,
    reviewed: null,
    confirmed: null,
    rejected: null,
    unsure: null,
    model: null,
    score_method: null,
    diagnostic: null,
    created_at: null,
    reason: entry.reason,
    report_file: null,
    slide_path: entry.slidePath,
  };
}

/** Every key of Row, in order: a column missing from the list does not compile. */
type AllKeys<Row, Keys extends readonly (keyof Row)[]> = Exclude<keyof Row, Keys[number]> extends never ? Keys : never;
const columns = <Row>() => <const Keys extends readonly (keyof Row)[]>(keys: AllKeys<Row, Keys>): Keys => keys;

export const REGION_COLUMNS = columns<RegionRow>()([
  'slide', 'analysis_id', 'rank', 'region_id', 'name', 'score_max', 'score_mean', 'area_um2', 'area_mm2', 'cells',
  'centroid_x_px', 'centroid_y_px', 'centroid_x_um', 'centroid_y_um', 'bbox_x_px', 'bbox_y_px', 'bbox_width_px', 'bbox_height_px',
  'bbox_x_um', 'bbox_y_um', 'bbox_width_um', 'bbox_height_um', 'verdict', 'note', 'reviewer', 'reviewed_at',
]);

export const BATCH_COLUMNS = columns<BatchRow>()([
  'slide', 'analysis_id', 'status', 'slide_score', 'threshold', 'anomalous_regions', 'tissue_area_mm2', 'anomalous_area_mm2', 'anomalous_percent',
  'review_state', 'reviewed', 'confirmed', 'rejected', 'unsure', 'model', 'score_method', 'diagnostic', 'created_at', 'reason', 'report_file', 'slide_path',
]);

/** The CSV columns of a row type: header = key, value = the row's field. */
export function csvColumns<Row extends object>(keys: readonly (keyof Row & string)[]): { name: string; value: (row: Row) => CsvValue }[] {
  return keys.map((k) => ({ name: k, value: (row: Row) => row[k] as CsvValue }));
}
