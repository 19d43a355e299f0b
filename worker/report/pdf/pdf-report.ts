/**
 * The PDF anomaly report of one analysed slide, for a pathologist to read and file: page 1 with
 * identity, warnings, slide-level result and overview figure; the table of every region with its
 * verdict; the top regions at high resolution; then method and provenance. A failed analysis gets
 * one page saying why. The slide file is opened once for all figures, and a file that is gone or
 * changed becomes a banner, never a missing report.
 *
 * The document is streamed: pdfkit writes each image out as soon as it is embedded and each page
 * as the next one starts (a first, image-less layout pass counts the pages for "Page n of N"),
 * and the generator waits for the output to drain between crops, so memory stays flat however
 * many regions are drawn and however slow the reader is.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import PDFDocument from 'pdfkit';
import { readThumbnail } from '../../slide/thumbnail.js';
import type { RgbImage } from '../../slide/slide-source.js';
import { ALL_COLORMAPS, type ColormapName } from '../../store/colormap.js';
import { RESULT_FILES } from '../../store/result-store.js';
import { FLASHSLIDE_VERSION } from '../../util/version.js';
import { ReportArgumentError } from '../errors.js';
import { MAX_TOP_REGIONS, PAPER_SIZES, type PaperSize } from '../report-options.js';
import { readReportHeatmap, type ReportRegion, type SlideReport } from '../slide-report.js';
import { drawDetails, drawFullNotes } from './details-section.js';
import { FIGURE_DEFAULTS, heatmapColouring, renderOverview, type Heatmap, type Raster } from '../../store/heatmap-figure.js';
import { findReportFonts, type ReportFonts } from './fonts.js';
import { fmtDate } from './format.js';
import { MARGINS, newPage, type PageChrome, type Pdf } from './pdf-layout.js';
import { drawRegionPages } from './region-pages.js';
import { drawRegionsTable } from './regions-table.js';
import { notDiagnostic } from './report-facts.js';
import { closeSlideAccess, NO_SLIDE_ACCESS, openSlideAccess, type SlideCheck } from './slide-access.js';
import { drawFailure, drawIdentity, drawOverview, drawResultTiles, drawTitle, drawWarnings, type SummaryInput } from './summary-page.js';

export interface PdfReportOptions {
  paper: PaperSize;
  /** How many of the highest-ranked regions get a high-resolution crop (0..MAX_TOP_REGIONS). */
  topRegions: number;
  colormap: ColormapName;
}

/** Tuning that callers rarely need; tests swap the fonts or pin the time. */
export interface PdfTuning {
  /** Bytes pdfkit may hold unread before the generator waits for the output to take them. */
  drainLimit: number;
  /** Longest wait for a stalled output, after which generation goes on (memory then grows). */
  drainTimeoutMs: number;
  /** Regions numbered on the overview (all are outlined). */
  overviewLabels: number;
  fonts: ReportFonts | null;
  /** The report's own timestamp (tests pin it). */
  now: Date | null;
}

export const PDF_TUNING: Readonly<PdfTuning> = { drainLimit: 4 << 20, drainTimeoutMs: 60_000, overviewLabels: 60, fonts: null, now: null };

const PAGE_SIZE: Record<PaperSize, string> = { a4: 'A4', letter: 'LETTER' };

function checkOptions(options: PdfReportOptions): void {
  if (!PAPER_SIZES.includes(options.paper)) throw new ReportArgumentError(`paper '${String(options.paper)}' is not one of ${PAPER_SIZES.join(', ')}`);
  if (!Number.isInteger(options.topRegions) || options.topRegions < 0 || options.topRegions > MAX_TOP_REGIONS) {
    throw new ReportArgumentError(`topRegions must be a whole number from 0 to ${MAX_TOP_REGIONS}, got ${String(options.topRegions)}`);
  }
  if (!ALL_COLORMAPS.includes(options.colormap)) throw new ReportArgumentError(`colormap '${String(options.colormap)}' is not one of ${ALL_COLORMAPS.join(', ')}`);
}

function newDocument(report: SlideReport, options: PdfReportOptions, fonts: ReportFonts, now: Date, chrome: PageChrome): Pdf {
  const doc = new PDFDocument({
    size: PAGE_SIZE[options.paper],
    margins: { ...MARGINS },
    autoFirstPage: false,
    pdfVersion: '1.7',
    displayTitle: true,
    lang: 'en',
    info: {
      Title: `flashslide anomaly report — ${report.name}`,
      Author: 'flashslide',
      Creator: `flashslide ${FLASHSLIDE_VERSION}`,
      Producer: 'flashslide',
      CreationDate: now,
      Subject: `Anomaly analysis ${report.analysisId} of ${report.name}${report.diagnostic ? '' : ' (not diagnostic)'}`,
      Keywords: ['flashslide', `analysis:${report.analysisId}`, `slide-fingerprint:${report.slide.fingerprint ?? 'unknown'}`].join(', '),
    },
  });
  doc.registerFont('body', fonts.regular);
  doc.registerFont('bold', fonts.bold);
  doc.registerFont('mono', fonts.mono);
  // Registered only: pdfkit reads a collection when a text first needs it.
  if (fonts.wide !== null) {
    doc.registerFont('wide-body', fonts.wide.regular.file, fonts.wide.regular.face);
    doc.registerFont('wide-bold', fonts.wide.bold.file, fonts.wide.bold.face);
  }
  return { doc, fonts, chrome, pages: { count: 0, total: null } };
}

/** What both passes draw from: read once, before the first. */
interface Material {
  summary: SummaryInput;
  figures: OverviewFigure | null;
}

/**
 * Streams the PDF. Resolves once the document is fully written into `out` (which it does not end).
 *
 * Two passes: the first lays the document out without reading the slide or making images, only
 * to count its pages; the second writes it, each page numbered "n of N" as it starts and
 * flushed when the next one does. (pdfkit's alternative, buffering every page to number them at
 * the end, holds each page's content until the document ends.)
 */
export async function writePdfReport(report: SlideReport, options: PdfReportOptions, out: NodeJS.WritableStream, tuning: Partial<PdfTuning> = {}): Promise<void> {
  checkOptions(options);
  const t = { ...PDF_TUNING, ...tuning };
  const fonts = t.fonts ?? findReportFonts();
  const now = t.now ?? new Date();
  const chrome: PageChrome = {
    title: report.name,
    right: `Analysis ${report.analysisId.slice(0, 12)}`,
    footer: `flashslide ${FLASHSLIDE_VERSION} · generated ${fmtDate(now.toISOString())}`,
    notice: notDiagnostic(report)?.short ?? null,
  };
  const check = report.status === 'failed' ? NO_SLIDE_ACCESS : await openSlideAccess(report);
  try {
    const summary: SummaryInput = { report, check, generatedAt: now.toISOString() };
    const material: Material = { summary, figures: report.status === 'failed' ? null : await overviewFigure(report, check, options.colormap) };

    const layout = newDocument(report, options, fonts, now, chrome);
    layout.doc.resume(); // nobody reads the layout pass: let its bytes fall away
    await render(layout, material, options, t, { dryRun: true, drain: async () => undefined });

    const pdf = newDocument(report, options, fonts, now, chrome);
    pdf.pages.total = layout.pages.count;
    await stream(
      pdf.doc,
      out,
      async (drain) => {
        await render(pdf, material, options, t, { dryRun: false, drain });
        if (pdf.pages.count !== layout.pages.count) {
          throw new Error(`PDF layout bug: the layout pass made ${layout.pages.count} pages, the document ${pdf.pages.count}; their numbers would be wrong`);
        }
      },
      t,
    );
  } finally {
    await closeSlideAccess(check);
  }
}

/**
 * Pipes `doc` into `out` (without ending it) while `write` draws, then ends the document and
 * resolves when all of it has gone into `out`. `write` gets a drain function that waits while
 * pdfkit holds more than the drain limit that the output has not taken yet.
 */
async function stream(doc: PDFKit.PDFDocument, out: NodeJS.WritableStream, write: (drain: () => Promise<void>) => Promise<void>, t: PdfTuning): Promise<void> {
  let onOutError: ((err: Error) => void) | null = null;
  const ended = new Promise<void>((resolve, reject) => {
    doc.once('end', resolve);
    doc.once('error', reject);
    onOutError = reject;
    out.once('error', reject);
  });
  ended.catch(() => undefined); // awaited below; this keeps an early failure from going unhandled
  doc.pipe(out, { end: false });
  const drain = async (): Promise<void> => {
    const start = Date.now();
    while (doc.readableLength > t.drainLimit && Date.now() - start < t.drainTimeoutMs) await sleep(5);
  };
  try {
    await write(drain);
    doc.end();
    await ended;
  } catch (err) {
    doc.unpipe(out);
    throw err;
  } finally {
    if (onOutError !== null) out.removeListener('error', onOutError);
  }
}

async function render(pdf: Pdf, material: Material, options: PdfReportOptions, t: PdfTuning, pass: { dryRun: boolean; drain: () => Promise<void> }): Promise<void> {
  const { summary, figures } = material;
  const { report, check } = summary;
  newPage(pdf);
  drawTitle(pdf, summary);
  if (figures === null) {
    drawFailure(pdf, summary);
    return;
  }
  const colouring = figures.heatmap === null ? null : heatmapColouring(figures.heatmap.meta, options.colormap);
  drawWarnings(pdf, summary);
  drawIdentity(pdf, summary);
  drawResultTiles(pdf, summary);
  drawOverview(pdf, summary, {
    raster: figures.raster,
    colouring,
    colormap: options.colormap,
    heatmapNote: figures.heatmapNote,
    slideImageNote: figures.slideImageNote,
    maxLabels: t.overviewLabels,
  });
  await pass.drain();

  newPage(pdf);
  const cutInTable = drawRegionsTable(pdf, report);
  const cutInCrops = await drawRegionPages(pdf, {
    report,
    check,
    heatmap: figures.heatmap,
    colouring,
    colormap: options.colormap,
    topRegions: options.topRegions,
    dryRun: pass.dryRun,
    afterEach: pass.drain,
  });
  drawDetails(pdf, report, check);
  const cut = new Set<ReportRegion>([...cutInTable, ...cutInCrops]);
  drawFullNotes(
    pdf,
    report.regions.filter((r) => cut.has(r)),
  );
}

interface OverviewFigure {
  raster: Raster | null;
  heatmap: Heatmap | null;
  heatmapNote: string | null;
  slideImageNote: string | null;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

/** The overview raster and the heatmap it was made from (kept for the crops' insets). */
async function overviewFigure(report: SlideReport, check: SlideCheck, colormap: ColormapName): Promise<OverviewFigure> {
  let heatmap: Heatmap | null = null;
  let heatmapNote: string | null = null;
  try {
    heatmap = await readReportHeatmap(report);
  } catch (err) {
    heatmapNote = `The heatmap could not be read (${errorText(err)}); the overview shows the slide only.`;
  }
  const tissuePng = await readFile(join(report.resultDir, RESULT_FILES.tissue)).catch(() => null);
  let thumbnail: RgbImage | null = null;
  let slideImageNote: string | null = check.source === null ? 'Slide image unavailable: the heatmap is shown on grey.' : null;
  if (check.source !== null) {
    try {
      thumbnail = await readThumbnail(check.source, FIGURE_DEFAULTS.overviewSide);
    } catch (err) {
      slideImageNote = `The slide image could not be read (${errorText(err)}): the heatmap is shown on grey.`;
    }
  }
  const { width, height } = report.slide;
  if (width === null || height === null) return { raster: null, heatmap, heatmapNote: heatmapNote ?? 'The slide\'s size was not recorded.', slideImageNote };
  const raster = await renderOverview({
    slideWidth: width,
    slideHeight: height,
    thumbnail,
    heatmap,
    colouring: heatmap === null ? null : heatmapColouring(heatmap.meta, colormap),
    tissuePng,
  });
  return { raster, heatmap, heatmapNote, slideImageNote };
}
