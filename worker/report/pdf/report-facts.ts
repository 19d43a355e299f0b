/**
 * What the PDF says about a slide, as label/value lists, apart from how it is drawn: the wording
 * of identity, provenance, results and the not-diagnostic notice lives here, so the layout code
 * only places text.
 */
import type { ReportRegion, SlideReport } from '../slide-report.js';
import { fmtDate, fmtInt, fmtLength, fmtMm2, fmtMs, fmtParam, fmtPercent, fmtScore, fmtSig, NONE, shortHash } from './format.js';
import type { KeyValue } from './pdf-layout.js';
import type { SlideCheck } from './slide-access.js';

export interface Notice {
  title: string;
  body: string;
  /** One line for every page's footer. */
  short: string;
}

/** Why the output must not be read as a diagnosis, or null when it may. */
export function notDiagnostic(report: SlideReport): Notice | null {
  if (report.diagnostic) return null;
  if (report.status === 'failed') {
    return { title: 'NOT DIAGNOSTIC — no result', body: 'The analysis of this slide failed; there are no scores to interpret.', short: 'Not diagnostic: analysis failed' };
  }
  if (report.model?.demo === true) {
    return {
      title: 'NOT DIAGNOSTIC — demo model with random weights',
      body:
        `This slide was analysed with flashslide's demo model (${report.model.name}), whose weights are random. ` +
        'Its scores show that the pipeline runs end to end; they carry no information about disease. Do not use this report for diagnosis.',
      short: 'NOT DIAGNOSTIC: demo model with random weights',
    };
  }
  return {
    title: 'NOT DIAGNOSTIC — model without a validation record',
    body:
      `The model ${report.model?.name ?? '(unknown)'} has no validation record (who validated it, when, the evidence and the intended use). ` +
      'Until one is added to its configuration, its scores are for research only and must not be used for diagnosis.',
    short: 'NOT DIAGNOSTIC: model without a validation record',
  };
}

/** Vendor and magnification, from the report, else from the slide opened now. */
export function slideDescription(report: SlideReport, check: SlideCheck): { vendor: string | null; objectivePower: number | null } {
  return { vendor: report.slide.vendor ?? check.source?.vendor ?? null, objectivePower: report.slide.objectivePower ?? check.source?.objectivePower ?? null };
}

function magnification(objectivePower: number | null, mpp: number | null): string {
  if (objectivePower !== null) return `${fmtSig(objectivePower, 2)}× (scanner objective)`;
  if (mpp !== null && mpp > 0) return `about ${fmtSig(10 / mpp, 2)}× (from resolution; not recorded)`;
  return NONE;
}

export function slideFacts(report: SlideReport, check: SlideCheck): KeyValue[] {
  const s = report.slide;
  const { vendor, objectivePower } = slideDescription(report, check);
  const mm = (px: number | null): string => (px === null || s.mpp === null ? NONE : fmtSig((px * s.mpp) / 1000));
  const dims = s.width === null || s.height === null ? NONE : `${fmtInt(s.width)} × ${fmtInt(s.height)} px`;
  const dimsMm = s.width === null || s.height === null || s.mpp === null ? NONE : `${mm(s.width)} × ${mm(s.height)} mm`;
  return [
    { key: 'File', value: report.name, bold: true },
    { key: 'Path', value: report.slidePath },
    { key: 'Fingerprint', value: s.fingerprint === null ? 'not recorded' : shortHash(s.fingerprint, 16), mono: s.fingerprint !== null },
    { key: 'Scanner vendor', value: [vendor, s.backend === null ? null : `read by ${s.backend}`].filter((v) => v !== null).join(', ') || NONE },
    { key: 'Dimensions', value: dims === NONE ? NONE : `${dims}  (${dimsMm})` },
    { key: 'Resolution', value: s.mpp === null ? NONE : `${fmtSig(s.mpp, 4)} µm/px${s.mppSource === null ? '' : ` (${s.mppSource})`}` },
    { key: 'Magnification', value: magnification(objectivePower, s.mpp) },
    ...(s.levels === null ? [] : [{ key: 'Pyramid levels', value: String(s.levels) }]),
  ];
}

export function analysisFacts(report: SlideReport): KeyValue[] {
  const m = report.model;
  const v = m?.validation ?? null;
  return [
    { key: 'Analysis id', value: report.analysisId, mono: true },
    { key: 'Model', value: m === null ? NONE : `${m.name}${m.demo ? ' (demo, random weights)' : ''}`, bold: true },
    { key: 'Weights', value: m?.weightsFingerprint == null ? 'not recorded' : shortHash(m.weightsFingerprint, 16), mono: m?.weightsFingerprint != null },
    { key: 'Validation', value: v === null ? 'none on record' : `${v.by}, ${v.date} (${v.reference})`, ...(v === null ? { colour: '#8a1c1c' } : {}) },
    { key: 'Score method', value: report.scoring?.method ?? NONE },
    { key: 'Processed', value: fmtDate(report.createdAt) },
    { key: 'Processing time', value: fmtMs(report.timings?.totalMs) },
    { key: 'Software', value: report.flashslideVersion === null ? 'flashslide (version not recorded)' : `flashslide ${report.flashslideVersion}` },
  ];
}

export interface Tile {
  label: string;
  value: string;
  sub: string;
}

/** The slide-level numbers, as tiles across page 1. */
export function resultTiles(report: SlideReport): Tile[] {
  const r = report.result;
  const rv = report.review;
  if (r === null) return [];
  return [
    { label: 'Slide score', value: fmtScore(r.slideScore), sub: r.slideScore === null ? 'no tissue scored' : 'mean of top 1 % cells' },
    { label: 'Threshold', value: fmtScore(r.threshold), sub: r.threshold === null ? 'method set none' : 'cells at or above are anomalous' },
    { label: 'Anomalous area', value: fmtMm2(r.anomalousAreaMm2), sub: `${fmtPercent(r.anomalousPercent)} of tissue` },
    { label: 'Tissue area', value: fmtMm2(r.tissueAreaMm2), sub: `${fmtInt(r.tissueCells)} cells of ${fmtLength(r.cellUm)}` },
    { label: 'Regions', value: fmtInt(r.regionsCount), sub: 'anomalous, ranked by max score' },
    { label: 'Review', value: `${rv.reviewed} / ${rv.total}`, sub: reviewBreakdown(report) },
  ];
}

export function reviewBreakdown(report: SlideReport): string {
  const rv = report.review;
  if (rv.total === 0) return 'nothing to review';
  if (rv.reviewed === 0) return 'not started';
  return `${rv.confirmed} confirmed, ${rv.rejected} rejected, ${rv.unsure} unsure`;
}

export function reviewFacts(report: SlideReport): KeyValue[] {
  const rv = report.review;
  const state = rv.state === 'done' ? 'complete' : rv.state === 'in-progress' ? 'in progress' : 'not started';
  return [
    { key: 'Review', value: `${state}: ${rv.reviewed} of ${rv.total} regions reviewed (${rv.confirmed} confirmed, ${rv.rejected} rejected, ${rv.unsure} unsure)` },
    { key: 'Last verdict', value: rv.lastAt === null ? NONE : `${rv.lastReviewer ?? 'unnamed reviewer'}, ${fmtDate(rv.lastAt)}` },
  ];
}

export function validationFacts(report: SlideReport): KeyValue[] {
  const v = report.model?.validation ?? null;
  if (v === null) return [{ key: 'Validation record', value: 'none — the output is not diagnostic', colour: '#8a1c1c' }];
  return [
    { key: 'Validated by', value: v.by },
    { key: 'Date', value: v.date },
    { key: 'Reference', value: v.reference },
    { key: 'Intended use', value: v.intendedUse ?? 'not stated' },
  ];
}

export function modelFacts(report: SlideReport): KeyValue[] {
  const m = report.model;
  if (m === null) return [];
  return [
    { key: 'Model', value: m.name, bold: true },
    { key: 'Description', value: m.description ?? NONE },
    { key: 'Weights hash', value: m.weightsFingerprint ?? 'not recorded', mono: m.weightsFingerprint !== null },
    { key: 'Demo model', value: m.demo ? 'yes (random weights)' : 'no' },
  ];
}

export function scoringFacts(report: SlideReport): KeyValue[] {
  const s = report.scoring;
  if (s === null) return [];
  const params = Object.entries(s.params).map(([k, v]) => ({ key: k, value: fmtParam(v) }));
  return [
    { key: 'Method', value: s.method, bold: true },
    { key: 'Threshold', value: fmtScore(s.threshold) },
    { key: 'Score range', value: `${fmtScore(s.min)} to ${fmtScore(s.max)} (tissue cells)` },
    ...params,
  ];
}

export function parameterFacts(report: SlideReport): KeyValue[] {
  const p = report.parameters;
  const rows: KeyValue[] = [];
  if (p !== null) {
    rows.push(
      { key: 'Target resolution', value: `${fmtSig(p.targetMpp, 3)} µm/px (effective ${fmtSig(p.effectiveMpp, 4)})` },
      { key: 'Region size', value: `${p.regionSize} px, overlap ${p.overlap}` },
    );
    if (p.mppOverride !== null) rows.push({ key: 'Resolution override', value: `${p.mppOverride} µm/px` });
    if (p.fallbackMpp !== null) rows.push({ key: 'Fallback resolution', value: `${p.fallbackMpp} µm/px` });
  }
  const r = report.result;
  if (r !== null) {
    rows.push({ key: 'Heatmap cell', value: `${fmtLength(r.cellUm)} square` });
    if (r.regionsAnalysed !== null) rows.push({ key: 'Regions analysed', value: fmtInt(r.regionsAnalysed) });
  }
  rows.push({ key: 'Provenance', value: provenanceText(report.provenance) });
  return rows;
}

function provenanceText(p: SlideReport['provenance']): string {
  if (p === 'analysis.json') return 'analysis.json (complete record)';
  if (p === 'plan.json') return 'plan.json in the work folder (result made before analysis.json existed)';
  return 'result files only (identity partly unknown)';
}

export function timingFacts(report: SlideReport): KeyValue[] {
  const t = report.timings;
  if (t === null) return [];
  return [
    { key: 'Plan', value: fmtMs(t.planMs) },
    { key: 'Read', value: fmtMs(t.readMs) },
    { key: 'Inference', value: fmtMs(t.inferenceMs) },
    ...(t.writeMs === undefined ? [] : [{ key: 'Write', value: fmtMs(t.writeMs) }]),
    { key: 'Scoring', value: fmtMs(t.scoringMs) },
    { key: 'Total', value: fmtMs(t.totalMs), bold: true },
  ];
}

/** The verdict as the table and the crops print it. */
export function verdictText(region: ReportRegion): string {
  return region.review === null ? 'open' : region.review.verdict;
}

export const isRejected = (region: ReportRegion): boolean => region.review?.verdict === 'rejected';

export function centroidText(region: ReportRegion): string {
  return `${fmtInt(region.centroidUm[0])}, ${fmtInt(region.centroidUm[1])}`;
}
