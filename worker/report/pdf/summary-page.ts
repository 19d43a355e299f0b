/**
 * Page 1: what a pathologist filing the report reads first. The slide and the analysis that
 * identify it, every warning about how far the result can be trusted (not diagnostic, the file
 * changed, the images are missing), the slide-level numbers, and the overview figure. A failed
 * analysis gets this page only, with its reason in place of results.
 */
import type { ColormapName } from '../../store/colormap.js';
import type { SlideReport } from '../slide-report.js';
import { drawColourBar, drawLegend } from './legends.js';
import { drawRegionsOnOverview, type Placement } from './region-marks.js';
import { FIGURE_DEFAULTS, type Colouring, type Raster } from '../../store/heatmap-figure.js';
import { fmtDate, NONE, shortHash } from './format.js';
import { banner, contentBox, keyValues, put, rule, sectionTitle, STYLE, widthOf, type KeyValue, type Pdf } from './pdf-layout.js';
import { analysisFacts, notDiagnostic, resultTiles, slideFacts, type Tile } from './report-facts.js';
import type { SlideCheck } from './slide-access.js';

export interface SummaryInput {
  report: SlideReport;
  check: SlideCheck;
  /** When the report was made (ISO 8601). */
  generatedAt: string;
}

/** Title, slide name and the line that dates the report. */
export function drawTitle(pdf: Pdf, input: SummaryInput): void {
  const box = contentBox(pdf.doc);
  const y = box.top;
  put(pdf, 'Whole-slide anomaly report', box.left, y, { font: 'bold', size: STYLE.size.title, colour: STYLE.ink });
  const status = input.report.status === 'failed' ? 'ANALYSIS FAILED' : 'RESEARCH USE';
  const statusColour = input.report.status === 'failed' || !input.report.diagnostic ? STYLE.banner.danger.border : STYLE.accent;
  const sw = widthOf(pdf, status, { font: 'bold', size: STYLE.size.small });
  if (input.report.status === 'failed' || !input.report.diagnostic) {
    pdf.doc.save().roundedRect(box.right - sw - 12, y + 3, sw + 12, 14, 2).lineWidth(0.9).strokeColor(statusColour).stroke().restore();
    put(pdf, status, box.right - sw - 6, y + 6.3, { font: 'bold', size: STYLE.size.small, colour: statusColour });
  }
  put(pdf, input.report.name, box.left, y + 24, { font: 'bold', size: 11.5, colour: STYLE.accent, width: box.width });
  const when = input.report.status === 'failed' ? 'failed' : 'processed';
  const line = `Analysis ${input.report.analysisId}  ·  ${when} ${fmtDate(input.report.createdAt)}  ·  report generated ${fmtDate(input.generatedAt)}`;
  put(pdf, line, box.left, y + 41, { size: STYLE.size.small, colour: STYLE.muted, width: box.width });
  rule(pdf, box.left, box.right, y + 55, STYLE.rule, 0.8);
  pdf.doc.y = y + 62;
}

/** The banners that qualify everything below them. */
export function drawWarnings(pdf: Pdf, input: SummaryInput): void {
  const { report, check } = input;
  const notice = notDiagnostic(report);
  if (notice !== null && report.status !== 'failed') banner(pdf, 'danger', notice.title, notice.body);
  if (report.status === 'failed') return;
  if (check.matches === false) {
    banner(
      pdf,
      'warning',
      'The slide file has changed since it was analysed',
      `The file at ${report.slidePath} is not the file that was analysed: its fingerprint is ${shortHash(check.currentFingerprint, 16)}, the analysed file's ${shortHash(report.slide.fingerprint, 16)} ` +
        'The scores, regions and heatmap are those of the analysed file; the images in this report are read from the current file and may not match them.',
    );
  }
  if (check.source === null) {
    banner(
      pdf,
      'note',
      'Slide images unavailable',
      `The slide file could not be opened (${check.openError ?? 'unknown reason'}). The figures show the heatmap and the region outlines without the slide; all numbers are from the stored result.`,
    );
  } else if (check.matches === null && report.slide.fingerprint === null) {
    banner(pdf, 'note', 'Slide file not verified', 'This result did not record the analysed file\'s fingerprint, so it cannot be checked that the images below come from the same file.');
  }
}

/** Two columns of identity: the slide, and the analysis. */
export function drawIdentity(pdf: Pdf, input: SummaryInput): void {
  const box = contentBox(pdf.doc);
  const gap = 18;
  const colW = (box.width - gap) / 2;
  const y = pdf.doc.y + 2;
  const head = (text: string, x: number): void => {
    put(pdf, text.toUpperCase(), x, y, { font: 'bold', size: STYLE.size.tiny + 0.4, colour: STYLE.accent });
    rule(pdf, x, x + colW, y + 10, STYLE.rule, 0.5);
  };
  head('Slide', box.left);
  head('Analysis', box.left + colW + gap);
  const left = keyValues(pdf, slideFacts(input.report, input.check), box.left, y + 14, colW, 80);
  const right = keyValues(pdf, analysisFacts(input.report), box.left + colW + gap, y + 14, colW, 80);
  pdf.doc.y = Math.max(left, right) + 6;
}

function drawTile(pdf: Pdf, tile: Tile, x: number, y: number, w: number, h: number): void {
  pdf.doc.save().roundedRect(x, y, w, h, 2.5).fillColor('#f3f6f9').fill().restore();
  pdf.doc.save().rect(x, y, 2, h).fillColor(STYLE.accent).fill().restore();
  put(pdf, tile.label.toUpperCase(), x + 7, y + 6, { font: 'bold', size: STYLE.size.tiny - 0.4, colour: STYLE.muted, width: w - 10 });
  // The value shrinks rather than being cut: a tile's number is the point of the tile.
  let size = 11;
  while (size > 6.5 && widthOf(pdf, tile.value, { font: 'bold', size }) > w - 10) size -= 0.5;
  put(pdf, tile.value, x + 7, y + 15 + (11 - size) / 2, { font: 'bold', size, colour: STYLE.ink, width: w - 10 });
  put(pdf, tile.sub, x + 7, y + 31, { size: STYLE.size.tiny - 0.6, colour: STYLE.muted, width: w - 10, height: 16, wrap: true });
}

/** The slide-level result as a row of tiles. */
export function drawResultTiles(pdf: Pdf, input: SummaryInput): void {
  const tiles = resultTiles(input.report);
  if (tiles.length === 0) return;
  sectionTitle(pdf, 'Slide-level result', undefined, 52);
  const box = contentBox(pdf.doc);
  const gap = 5;
  const w = (box.width - gap * (tiles.length - 1)) / tiles.length;
  const h = 48;
  const y = pdf.doc.y;
  tiles.forEach((t, i) => drawTile(pdf, t, box.left + i * (w + gap), y, w, h));
  pdf.doc.y = y + h + 10;
}

export interface OverviewPanel {
  raster: Raster | null;
  colouring: Colouring | null;
  colormap: ColormapName;
  /** Why there is no heatmap (a damaged result), shown in its place. */
  heatmapNote: string | null;
  /** Why the slide itself is missing from the figure, shown under it. */
  slideImageNote: string | null;
  /** Regions numbered on the overview (all are outlined). */
  maxLabels: number;
}

/** The overview figure: fitted into the rest of the page (or the next one, when too little is left). */
export function drawOverview(pdf: Pdf, input: SummaryInput, ov: OverviewPanel): void {
  const { report } = input;
  // Room under the figure: notes, colour bar, legend and caption.
  const notes = [ov.slideImageNote, ov.heatmapNote].filter((n): n is string => n !== null);
  const legendH = 80 + 10 * notes.length;
  sectionTitle(pdf, 'Overview', `heatmap of anomaly scores over the slide (${ov.colormap})`, 260);
  const box = contentBox(pdf.doc);
  const y = pdf.doc.y;
  const availH = box.bottom - y - legendH;
  if (ov.raster === null) {
    put(pdf, ov.heatmapNote ?? 'No overview: the result has no heatmap.', box.left, y, { size: STYLE.size.body, colour: STYLE.banner.warning.ink, width: box.width, wrap: true });
    pdf.doc.y = y + 30;
    return;
  }
  const aspect = ov.raster.width / ov.raster.height;
  const h = Math.min(availH, box.width / aspect);
  const w = h * aspect;
  const x = box.left + (box.width - w) / 2;
  pdf.doc.image(ov.raster.jpeg, x, y, { width: w, height: h });
  pdf.doc.save().rect(x, y, w, h).lineWidth(0.5).strokeColor('#9aa1a9').stroke().restore();
  const slideWidth = report.slide.width ?? 1;
  const p: Placement = { x, y, width: w, height: h, scale: w / slideWidth, originX: 0, originY: 0 };
  drawRegionsOnOverview(pdf, p, report.regions, ov.colormap, ov.maxLabels);

  let cy = y + h + 8;
  for (const note of notes) {
    put(pdf, note, box.left, cy, { size: STYLE.size.tiny, colour: STYLE.banner.warning.ink, width: box.width });
    cy += 10;
  }
  if (ov.colouring !== null) {
    const barW = Math.min(box.width - 20, 380);
    cy += drawColourBar(pdf, box.left + (box.width - barW) / 2, cy + 6, barW, ov.colouring, `Anomaly score (${report.scoring?.method ?? NONE})`) + 10;
  }
  cy += drawLegend(pdf, box.left, cy, box.width, ov.colormap, FIGURE_DEFAULTS.tissueOutline);
  const labelled = report.regions.length > ov.maxLabels ? ` The ${ov.maxLabels} highest-ranked regions are numbered.` : '';
  put(pdf, `North up as scanned; ${report.regions.length} anomalous region${report.regions.length === 1 ? '' : 's'} outlined.${labelled}`, box.left, cy + 2, {
    size: STYLE.size.tiny,
    colour: STYLE.faint,
    width: box.width,
  });
  pdf.doc.y = cy + 14;
}

/** The one page of a failed analysis: who, what, and why it failed. */
export function drawFailure(pdf: Pdf, input: SummaryInput): void {
  const { report } = input;
  const failure = report.failure;
  banner(pdf, 'danger', 'Analysis failed — this slide has no result', failure === null ? 'The reason was not recorded.' : `Reason: ${failure.reason}`);
  const box = contentBox(pdf.doc);
  const rows: readonly KeyValue[] = [
    { key: 'File', value: report.name, bold: true },
    { key: 'Path', value: report.slidePath },
    { key: 'Analysis id', value: report.analysisId, mono: true },
    { key: 'Failed at', value: fmtDate(failure?.at) },
    { key: 'Reason', value: failure?.reason ?? NONE, colour: STYLE.banner.danger.ink },
  ];
  sectionTitle(pdf, 'Slide and analysis', undefined, 80);
  pdf.doc.y = keyValues(pdf, rows, box.left, pdf.doc.y, box.width, 90) + 10;
  put(
    pdf,
    'No scores, figures or regions exist for this slide. Fix the cause above (for example a damaged or unsupported file) and analyse the slide again; a new report replaces this one.',
    box.left,
    pdf.doc.y,
    { size: STYLE.size.body, colour: STYLE.muted, width: box.width, wrap: true },
  );
  pdf.doc.y += 30;
}
