/**
 * The table of every anomalous region, in rank order, with the pathologist's verdicts. Rejected
 * regions stay in the table (struck through and grey, marked "rejected"): a filed report must
 * show what the model flagged and what the reviewer set aside, not only what survived.
 */
import type { ReportRegion, SlideReport } from '../slide-report.js';
import { fmtScore, fmtSig } from './format.js';
import { contentBox, put, sectionTitle, STYLE, type Pdf } from './pdf-layout.js';
import { drawTable, type TableColumn } from './pdf-table.js';
import { centroidText, isRejected, reviewBreakdown, verdictText } from './report-facts.js';

const VERDICT_COLOUR: Record<string, string> = { confirmed: '#1b5e20', rejected: '#a52a2a', unsure: '#8a5a00', open: STYLE.faint };

export const REGION_COLUMNS: readonly TableColumn<ReportRegion>[] = [
  { header: 'Rank', weight: 6, align: 'right', cell: (r) => String(r.rank), strikable: true, font: () => 'bold' },
  { header: 'Max score', weight: 8.2, align: 'right', cell: (r) => fmtScore(r.scoreMax), strikable: true },
  { header: 'Mean score', weight: 8.2, align: 'right', cell: (r) => fmtScore(r.scoreMean), strikable: true },
  { header: 'Area mm²', weight: 8.6, align: 'right', cell: (r) => fmtSig(r.areaMm2), strikable: true },
  { header: 'Centroid x, y (µm)', weight: 12.5, align: 'right', cell: centroidText, strikable: true },
  {
    header: 'Verdict',
    weight: 11,
    cell: verdictText,
    font: (r) => (r.review === null ? 'body' : 'bold'),
    colour: (r) => VERDICT_COLOUR[verdictText(r)],
  },
  { header: 'Note', weight: 28, cell: (r) => r.review?.note || '', wrap: true },
  { header: 'Reviewer', weight: 12, cell: (r) => r.review?.reviewer || '', wrap: true },
];

/** Draws the table; returns the regions whose note it had to cut short. */
export function drawRegionsTable(pdf: Pdf, report: SlideReport): ReportRegion[] {
  const n = report.regions.length;
  sectionTitle(pdf, 'Anomalous regions', n === 0 ? undefined : `${n} region${n === 1 ? '' : 's'}, highest maximum score first · review: ${reviewBreakdown(report)}`, 40);
  const box = contentBox(pdf.doc);
  if (n === 0) {
    const text =
      report.result?.threshold === null
        ? 'No anomalous regions: the score method set no threshold for this slide (too little tissue to fit one).'
        : 'No anomalous regions: no group of cells at or above the threshold was large enough to be a region.';
    put(pdf, text, box.left, pdf.doc.y, { font: 'bold', size: STYLE.size.body + 0.5, colour: STYLE.ink, width: box.width, wrap: true });
    pdf.doc.y += 24;
    return [];
  }
  const cut = drawTable(pdf, REGION_COLUMNS, report.regions, {
    rowStyle: (r) => (isRejected(r) ? { colour: STYLE.struck, strike: true, fill: '#eceef0' } : {}),
    onContinue: () => {
      put(pdf, 'Anomalous regions (continued)', box.left, pdf.doc.y, { font: 'bold', size: STYLE.size.h3, colour: STYLE.accent });
      pdf.doc.y += 16;
    },
  });
  const y = pdf.doc.y + 5;
  put(
    pdf,
    'Scores are the model\'s anomaly scores of the region\'s cells; area is the region\'s outline; centroid in µm from the slide\'s top-left corner. ' +
      'Rejected regions are struck through and kept for the record. Verdict "open": not reviewed yet.',
    box.left,
    y,
    { size: STYLE.size.tiny, colour: STYLE.faint, width: box.width, wrap: true },
  );
  pdf.doc.y = y + 22;
  return cut;
}
