/**
 * The report's closing sections: how the result was made (model and its validation record,
 * score method with every parameter, analysis parameters, timings, full fingerprints), and any
 * reviewer note too long for the table or its crop block, in full. What a reader needs to
 * reproduce or audit the result, kept after the results themselves.
 */
import type { ReportRegion, SlideReport } from '../slide-report.js';
import { fmtDate, NONE } from './format.js';
import { contentBox, ensureSpace, flowText, keyValues, put, rule, sectionTitle, STYLE, type KeyValue, type Pdf } from './pdf-layout.js';
import { modelFacts, parameterFacts, reviewFacts, scoringFacts, timingFacts, validationFacts } from './report-facts.js';
import type { SlideCheck } from './slide-access.js';

const KEY_WIDTH = 92;

function block(pdf: Pdf, title: string, rows: readonly KeyValue[]): void {
  if (rows.length === 0) return;
  const box = contentBox(pdf.doc);
  ensureSpace(pdf, 16 + Math.min(rows.length, 4) * 12);
  const y = pdf.doc.y;
  put(pdf, title.toUpperCase(), box.left, y, { font: 'bold', size: STYLE.size.tiny + 0.4, colour: STYLE.accent });
  rule(pdf, box.left, box.right, y + 10, STYLE.rule, 0.5);
  let cy = y + 14;
  // Row by row, so a long parameter list may continue on the next page.
  for (const row of rows) {
    if (ensureSpace(pdf, 12)) cy = pdf.doc.y;
    cy = keyValues(pdf, [row], box.left, cy, box.width, KEY_WIDTH);
    pdf.doc.y = cy;
  }
  pdf.doc.y = cy + 8;
}

function identityFacts(report: SlideReport, check: SlideCheck): KeyValue[] {
  const current = check.currentFingerprint ?? (check.fingerprintError === null ? 'not checked' : `not readable (${check.fingerprintError})`);
  const verdict = check.matches === null ? '' : check.matches ? ' (same file as analysed)' : ' (DIFFERENT from the analysed file)';
  return [
    { key: 'Analysis id', value: report.analysisId, mono: true },
    { key: 'Slide fingerprint', value: report.slide.fingerprint ?? 'not recorded', mono: report.slide.fingerprint !== null },
    { key: 'File now', value: `${current}${verdict}`, mono: check.currentFingerprint !== null, ...(check.matches === false ? { colour: STYLE.banner.warning.ink } : {}) },
    { key: 'Result folder', value: report.resultDir },
    { key: 'Processed', value: fmtDate(report.createdAt) },
    { key: 'Software', value: report.flashslideVersion === null ? NONE : `flashslide ${report.flashslideVersion}` },
  ];
}

export function drawDetails(pdf: Pdf, report: SlideReport, check: SlideCheck): void {
  pdf.doc.y += 6;
  sectionTitle(pdf, 'Method and provenance', 'everything needed to audit or reproduce this result', 160);
  block(pdf, 'Identity', identityFacts(report, check));
  block(pdf, 'Model', modelFacts(report));
  block(pdf, 'Model validation record', validationFacts(report));
  block(pdf, 'Score method and parameters', scoringFacts(report));
  block(pdf, 'Analysis parameters', parameterFacts(report));
  block(pdf, 'Timings', timingFacts(report));
  block(pdf, 'Review', reviewFacts(report));
}

/** Notes cut short elsewhere, in full, flowing over pages as needed. */
export function drawFullNotes(pdf: Pdf, regions: readonly ReportRegion[]): void {
  const withNotes = regions.filter((r) => r.review !== null && r.review.note !== '');
  if (withNotes.length === 0) return;
  sectionTitle(pdf, 'Reviewer notes in full', 'notes too long for the table or a region block', 40);
  const box = contentBox(pdf.doc);
  for (const r of withNotes) {
    ensureSpace(pdf, 30);
    const rv = r.review;
    if (rv === null) continue;
    put(pdf, `Region ${r.rank} — ${rv.verdict}, ${rv.reviewer || 'reviewer not named'}, ${fmtDate(rv.at)}`, box.left, pdf.doc.y, { font: 'bold', size: STYLE.size.small + 0.4, width: box.width });
    pdf.doc.y += 12;
    flowText(pdf, rv.note, box.left + 8, box.width - 8, { size: STYLE.size.body, lineGap: 1 });
    pdf.doc.y += 8;
  }
}
