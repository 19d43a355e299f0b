/**
 * Writing reports: one slide's report in any format into a stream, and a batch of slides either
 * into a folder (the CLI) or as one ZIP stream (the viewer's batch download). Slides are loaded,
 * rendered and written one at a time, so a batch of a hundred slides needs the memory of one.
 *
 * A batch always ends with its summary, batch.csv and batch.json: one row per slide, including
 * failed slides (with the reason) and slides still queued or running (no report file yet).
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import yazl from 'yazl';
import { releaseFreeMemory } from '../native/addon.js';
import { writeFileAtomic, writeStreamAtomic } from '../util/atomic-write.js';
import { csvTable } from './csv.js';
import { reviewedGeoJson } from './geojson-report.js';
import { jsonBatchReport, jsonSlideReport, jsonText } from './json-report.js';
import { DEFAULT_REPORT_OPTIONS, FILE_EXTENSION, MAX_TOP_REGIONS, PAPER_SIZES, REPORT_FORMATS, type ReportFormat, type ReportOptions } from './report-options.js';
import { ReportArgumentError } from './errors.js';
import { failedReport, loadSlideReport, type SlideReport } from './slide-report.js';
import { BATCH_COLUMNS, REGION_COLUMNS, batchRow, csvColumns, pendingRow, regionRows, type BatchRow } from './table-rows.js';

/** What a batch is made of: results on disk, and slides named but not finished. */
export type ReportSubject =
  | { kind: 'result'; resultDir: string; analysisId: string; slidePath: string }
  | { kind: 'pending'; analysisId: string; slidePath: string; status: 'queued' | 'running'; reason: string };

export const BATCH_SUMMARY_FILES = { csv: 'batch.csv', json: 'batch.json' } as const;

/** Options checked once, with defaults: a bad value is a clear error before any slide is read. */
export function reportOptions(options: Partial<ReportOptions> = {}): ReportOptions {
  const o = { ...DEFAULT_REPORT_OPTIONS, ...options };
  if (!REPORT_FORMATS.includes(o.format)) throw new ReportArgumentError(`report format "${String(o.format)}" is not one of ${REPORT_FORMATS.join(', ')}`);
  if (!PAPER_SIZES.includes(o.paper)) throw new ReportArgumentError(`paper "${String(o.paper)}" is not one of ${PAPER_SIZES.join(', ')}`);
  if (!Number.isInteger(o.topRegions) || o.topRegions < 0 || o.topRegions > MAX_TOP_REGIONS) {
    throw new ReportArgumentError(`top regions must be an integer from 0 to ${MAX_TOP_REGIONS}, got ${String(o.topRegions)}`);
  }
  return o;
}

/** `<result folder name>.<ext>`: unique per analysis, and says which slide it is. */
export function reportFileName(resultDir: string, format: ReportFormat): string {
  return `${basename(resultDir)}.${FILE_EXTENSION[format]}`;
}

/**
 * A slide's regions as CSV (header only when it has none). A failed slide has no regions to list,
 * and a header-only region table would read as "analysed, nothing found": its CSV is the slide's
 * row of batch.csv instead (status `failed` and the reason), so a script sees the difference in
 * the header and a person in the reason.
 */
export function regionsCsv(report: SlideReport): string {
  if (report.status === 'failed') return batchCsv([batchRow(report, null)]);
  return csvTable(csvColumns(REGION_COLUMNS), regionRows(report));
}

export function batchCsv(rows: readonly BatchRow[]): string {
  return csvTable(csvColumns(BATCH_COLUMNS), rows);
}

/** The text formats as a string; null for the PDF (streamed). */
function reportText(report: SlideReport, format: ReportFormat): string | null {
  switch (format) {
    case 'csv':
      return regionsCsv(report);
    case 'json':
      return jsonText(jsonSlideReport(report));
    case 'geojson':
      return jsonText(reviewedGeoJson(report));
    case 'pdf':
      return null;
  }
}

/** Writes one slide's report into `out` (not ended: the caller owns it). */
export async function writeSlideReport(report: SlideReport, options: ReportOptions, out: Writable): Promise<void> {
  const text = reportText(report, options.format);
  if (text === null) {
    // Loaded on first use: text exports (and the CLI's start) never pay for pdfkit and its fonts.
    const { writePdfReport } = await import('./pdf/pdf-report.js');
    try {
      await writePdfReport(report, options, out);
    } finally {
      // A PDF decodes a thumbnail and many crops on libvips' threads: give their arenas' free
      // pages back, so the next report of a batch starts from the memory of none.
      releaseFreeMemory();
    }
    return;
  }
  await new Promise<void>((resolve, reject) => out.write(text, (err) => (err ? reject(err) : resolve())));
}

/** The subject's report; a result that cannot be read becomes a failed slide's report saying why. */
export async function loadSubject(subject: Extract<ReportSubject, { kind: 'result' }>): Promise<SlideReport> {
  try {
    return await loadSlideReport(subject.resultDir);
  } catch (err) {
    return failedReport(subject.resultDir, {
      slideId: subject.analysisId,
      slidePath: subject.slidePath,
      reason: `the result folder ${subject.resultDir} could not be read: ${(err as Error).message}`,
      at: new Date().toISOString(),
    });
  }
}

function pendingBatchRow(s: Extract<ReportSubject, { kind: 'pending' }>): BatchRow {
  return pendingRow({ name: basename(s.slidePath), analysisId: s.analysisId, slidePath: s.slidePath, status: s.status, reason: s.reason });
}

/** The batch summary alone: one row per subject, slides loaded one at a time. */
export async function batchRows(subjects: readonly ReportSubject[]): Promise<BatchRow[]> {
  const rows: BatchRow[] = [];
  for (const s of subjects) rows.push(s.kind === 'pending' ? pendingBatchRow(s) : batchRow(await loadSubject(s), null));
  return rows;
}

export interface BatchWriteResult {
  /** Report files written, in subject order (absolute paths). */
  files: string[];
  rows: BatchRow[];
  summaryFiles: string[];
}

/**
 * One report file per finished or failed slide in `outDir`, then batch.csv and batch.json. Each
 * file is written atomically: an interrupted batch leaves complete files or none.
 */
export async function writeBatchFolder(
  subjects: readonly ReportSubject[],
  options: ReportOptions,
  outDir: string,
  onSlide?: (row: BatchRow, file: string | null) => void,
): Promise<BatchWriteResult> {
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  const rows: BatchRow[] = [];
  for (const s of subjects) {
    if (s.kind === 'pending') {
      const row = pendingBatchRow(s);
      rows.push(row);
      onSlide?.(row, null);
      continue;
    }
    const report = await loadSubject(s);
    const name = reportFileName(s.resultDir, options.format);
    const file = join(outDir, name);
    await writeStreamAtomic(file, (out) => writeSlideReport(report, options, out));
    files.push(file);
    const row = batchRow(report, name);
    rows.push(row);
    onSlide?.(row, file);
  }
  const summaryFiles = [join(outDir, BATCH_SUMMARY_FILES.csv), join(outDir, BATCH_SUMMARY_FILES.json)];
  await writeFileAtomic(summaryFiles[0] as string, batchCsv(rows));
  await writeFileAtomic(summaryFiles[1] as string, jsonText(jsonBatchReport(rows)));
  return { files, rows, summaryFiles };
}

/**
 * The same batch as a ZIP stream: entries are produced one after another as the consumer reads
 * (yazl asks for the next entry only when the previous one is written), so slides are loaded
 * and rendered one at a time and the summary, last, has every row.
 */
export function batchZip(subjects: readonly ReportSubject[], options: ReportOptions, folder = 'flashslide-reports'): Readable {
  const zip = new yazl.ZipFile();
  // Filled in subject order as the entries are written; the summaries come last.
  const slots: (BatchRow | undefined)[] = subjects.map(() => undefined);
  const rows = (): BatchRow[] => slots.filter((r): r is BatchRow => r !== undefined);
  // PDFs and their JPEGs do not shrink; text does.
  const compress = options.format !== 'pdf';
  for (const [i, s] of subjects.entries()) {
    if (s.kind === 'pending') {
      slots[i] = pendingBatchRow(s);
      continue;
    }
    const name = reportFileName(s.resultDir, options.format);
    zip.addReadStreamLazy(`${folder}/${name}`, { compress, mtime: new Date() }, (cb) => {
      const stream = new PassThrough();
      cb(null, stream);
      loadSubject(s)
        .then(async (report) => {
          await writeSlideReport(report, options, stream);
          slots[i] = batchRow(report, name);
          stream.end();
        })
        .catch((err: unknown) => stream.destroy(err as Error));
    });
  }
  const summary = (text: () => string) => (cb: (err: unknown, stream: NodeJS.ReadableStream) => void) => cb(null, Readable.from([text()]));
  zip.addReadStreamLazy(`${folder}/${BATCH_SUMMARY_FILES.csv}`, { compress: true, mtime: new Date() }, summary(() => batchCsv(rows())));
  zip.addReadStreamLazy(`${folder}/${BATCH_SUMMARY_FILES.json}`, { compress: true, mtime: new Date() }, summary(() => jsonText(jsonBatchReport(rows()))));
  zip.end();
  // yazl's output is an old-style stream; wrap it so errors and backpressure behave like Node's.
  return Readable.from(zip.outputStream as AsyncIterable<Buffer>);
}
