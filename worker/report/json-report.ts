/**
 * The JSON exports: a slide's report (everything the PDF says, as data, with the region rows of
 * the CSV plus each region's outline and verdict history) and a batch summary. `formatVersion`
 * changes only when a field changes meaning or goes away; new fields may appear.
 */
import { FLASHSLIDE_VERSION } from '../util/version.js';
import { regionRows, type BatchRow, type RegionRow } from './table-rows.js';
import { REPORT_FORMAT_VERSION, type ReportRegion, type SlideReport } from './slide-report.js';

export interface JsonSlideReport {
  formatVersion: typeof REPORT_FORMAT_VERSION;
  kind: 'flashslide-slide-report';
  generatedAt: string;
  generator: string;
  analysisId: string;
  status: SlideReport['status'];
  failure: SlideReport['failure'];
  slide: SlideReport['slide'] & { name: string; path: string };
  model: SlideReport['model'];
  diagnostic: boolean;
  scoring: SlideReport['scoring'];
  parameters: SlideReport['parameters'];
  result: SlideReport['result'];
  timings: SlideReport['timings'];
  createdAt: string | null;
  flashslideVersion: string | null;
  provenance: SlideReport['provenance'];
  review: SlideReport['review'];
  regions: (RegionRow & { geometry: ReportRegion['geometry']; history: NonNullable<ReportRegion['review']>['history'] })[];
}

export interface JsonBatchReport {
  formatVersion: typeof REPORT_FORMAT_VERSION;
  kind: 'flashslide-batch-report';
  generatedAt: string;
  generator: string;
  slides: BatchRow[];
}

export function jsonSlideReport(report: SlideReport, now = new Date()): JsonSlideReport {
  const rows = regionRows(report);
  return {
    formatVersion: REPORT_FORMAT_VERSION,
    kind: 'flashslide-slide-report',
    generatedAt: now.toISOString(),
    generator: `flashslide ${FLASHSLIDE_VERSION}`,
    analysisId: report.analysisId,
    status: report.status,
    failure: report.failure,
    slide: { name: report.name, path: report.slidePath, ...report.slide },
    model: report.model,
    diagnostic: report.diagnostic,
    scoring: report.scoring,
    parameters: report.parameters,
    result: report.result,
    timings: report.timings,
    createdAt: report.createdAt,
    flashslideVersion: report.flashslideVersion,
    provenance: report.provenance,
    review: report.review,
    regions: rows.map((row, i) => {
      const region = report.regions[i] as ReportRegion;
      return { ...row, geometry: region.geometry, history: region.review?.history ?? [] };
    }),
  };
}

export function jsonBatchReport(rows: readonly BatchRow[], now = new Date()): JsonBatchReport {
  return { formatVersion: REPORT_FORMAT_VERSION, kind: 'flashslide-batch-report', generatedAt: now.toISOString(), generator: `flashslide ${FLASHSLIDE_VERSION}`, slides: [...rows] };
}

export const jsonText = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
