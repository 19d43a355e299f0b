/** What a report is asked for: format and layout, with every default in one place. */
import type { ColormapName } from '../store/colormap.js';

export type ReportFormat = 'pdf' | 'geojson' | 'csv' | 'json';
export const REPORT_FORMATS: readonly ReportFormat[] = ['pdf', 'geojson', 'csv', 'json'];

export type PaperSize = 'a4' | 'letter';
export const PAPER_SIZES: readonly PaperSize[] = ['a4', 'letter'];

export interface ReportOptions {
  format: ReportFormat;
  /** PDF page size. */
  paper: PaperSize;
  /** PDF: how many of the highest-ranked regions get a page-width crop at high resolution. */
  topRegions: number;
  /** PDF: colour ramp of the heatmap (the viewer's default). */
  colormap: ColormapName;
}

export const DEFAULT_REPORT_OPTIONS: Readonly<ReportOptions> = {
  format: 'pdf',
  paper: 'a4',
  topRegions: 12,
  colormap: 'inferno',
};

/** Most crops a PDF will render: each is a slide read at high resolution. */
export const MAX_TOP_REGIONS = 200;

export const FILE_EXTENSION: Record<ReportFormat, string> = { pdf: 'pdf', geojson: 'geojson', csv: 'csv', json: 'json' };

export const CONTENT_TYPE: Record<ReportFormat, string> = {
  pdf: 'application/pdf',
  geojson: 'application/geo+json',
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
};
