/**
 * The PDF report over real results: slides analysed by the pipeline, verdicts recorded by the
 * review server's store, PDFs written by writePdfReport and read back with poppler (pdfinfo,
 * pdftotext, pdfimages, pdftoppm), the way a reader's viewer would see them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createWriteStream, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { writePdfReport, type PdfReportOptions, type PdfTuning } from '../../worker/report/pdf/pdf-report.js';
import { findReportFonts } from '../../worker/report/pdf/fonts.js';
import { fmtScore } from '../../worker/report/pdf/format.js';
import { loadSlideReport, type SlideReport } from '../../worker/report/slide-report.js';
import { ResultStore } from '../../worker/store/result-store.js';
import { ReviewStore } from '../../viewer/server/review-store.js';
import { CMU, tempDir } from '../helpers.js';
import { writePlantedSlide } from '../planted-slide.js';

const HOSTILE_NOTE = 'Zellkern größer, "atypisch"\nµm ≥ 2';
const REVIEWER = 'Dr. Åsa Ångström';
const A4: PdfReportOptions = { paper: 'a4', topRegions: 12, colormap: 'inferno' };

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} is missing: install poppler-utils (apt-get install poppler-utils) to read the reports back`);
    throw err;
  }
}
const text = (pdf: string): string => run('pdftotext', ['-layout', pdf, '-']);
const info = (pdf: string): string => run('pdfinfo', [pdf]);
const pages = (pdf: string): number => Number(/^Pages:\s+(\d+)/m.exec(info(pdf))?.[1]);
/** Image rows of `pdfimages -list` (after its two header lines). */
const images = (pdf: string): string[] => run('pdfimages', ['-list', pdf]).trim().split('\n').slice(2);

const LONG_NOTE = `${'Befund: atypische Kerne, Mitosen, Nekrose; Vergleich mit Vorbefund empfohlen. '.repeat(45)}ENDE-DER-NOTIZ`;

/** The planted report with its regions repeated to 90 (ranks 1..90) and a 3,600-character note on the first. */
function manyRegions(report: SlideReport): SlideReport {
  const regions = Array.from({ length: 90 }, (_, i) => {
    const r = report.regions[i % report.regions.length] as SlideReport['regions'][number];
    const review = i === 0 ? { verdict: 'confirmed' as const, note: LONG_NOTE, reviewer: REVIEWER, at: '2026-01-01T00:00:00.000Z', history: [] } : r.review;
    return { ...r, id: `${r.id}-${i}`, rank: i + 1, review };
  });
  return { ...report, regions, result: report.result === null ? null : { ...report.result, regionsCount: regions.length } };
}

// Notes as pathologists in Japan, Korea and China write them (mixed with Latin), and a character
// no font here has (an emoji), which must show as '?', never as an empty box.
const CJK_NOTES = ['核異型あり、Ki-67 高値 (要再検)', '종양 세포 의심 — 재검토 필요', '疑似肿瘤细胞 😀 复查'];

function withNotes(report: SlideReport, notes: readonly string[]): SlideReport {
  const regions = report.regions.map((r, i) => (i < notes.length ? { ...r, review: { verdict: 'unsure' as const, note: notes[i] as string, reviewer: '山田 太郎', at: '2026-01-01T00:00:00.000Z', history: [] } } : r));
  return { ...report, regions };
}

async function writePdf(path: string, report: SlideReport, options: PdfReportOptions, tuning: Partial<PdfTuning> = {}): Promise<string> {
  const out = createWriteStream(path);
  await writePdfReport(report, options, out, tuning);
  out.end();
  await finished(out);
  return path;
}

describe('PDF anomaly report of analysed slides', () => {
  let dir: string;
  let plantedDir: string;
  let planted: SlideReport;
  const pdf = { full: '', top3: '', letter: '', failed: '', noRegions: '', missing: '', changed: '', builtinFonts: '', many: '', validated: '', unvalidated: '', cjk: '' };

  beforeAll(async () => {
    dir = tempDir('flashslide-pdf-');
    const dataDir = join(dir, 'data');
    const slide = await writePlantedSlide(dir);
    const outcomes = await analyzeEmbedded([slide, CMU], { dataDir, regionSize: 512, device: 'cpu' });
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done']);
    const id = (outcomes[0] as { analysisId: string }).analysisId;
    plantedDir = join(dataDir, readdirSync(dataDir).find((f) => f.endsWith(id.slice(0, 12))) ?? '');

    // Verdicts as the review server records them: confirmed with a hostile note, rejected, unsure.
    const ids = (await loadSlideReport(plantedDir)).regions.map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(4);
    const store = new ReviewStore();
    await store.setVerdict(plantedDir, ids, ids[0] as string, { verdict: 'confirmed', note: HOSTILE_NOTE, reviewer: REVIEWER }, undefined);
    await store.setVerdict(plantedDir, ids, ids[1] as string, { verdict: 'rejected', note: 'stain artefact, folded edge', reviewer: REVIEWER }, undefined);
    await store.setVerdict(plantedDir, ids, ids[2] as string, { verdict: 'unsure', note: '', reviewer: 'J. Doe' }, undefined);
    planted = await loadSlideReport(plantedDir);

    await new ResultStore(dataDir).writeFailure('broken-0123456789ab', {
      reason: 'corrupt slide: damaged TIFF, directory offset beyond end of file',
      slidePath: join(dir, 'broken.svs'),
      at: '2026-01-02T03:04:05.000Z',
      analysisId: '0123456789abcdef01234567',
    });
    const failed = await loadSlideReport(join(dataDir, 'broken-0123456789ab'));

    pdf.full = await writePdf(join(dir, 'full.pdf'), planted, A4);
    pdf.top3 = await writePdf(join(dir, 'top3.pdf'), planted, { ...A4, topRegions: 3 });
    pdf.letter = await writePdf(join(dir, 'letter.pdf'), planted, { paper: 'letter', topRegions: 2, colormap: 'viridis' });
    pdf.failed = await writePdf(join(dir, 'failed.pdf'), failed, A4);
    pdf.noRegions = await writePdf(join(dir, 'none.pdf'), { ...planted, regions: [], result: planted.result === null ? null : { ...planted.result, regionsCount: 0 } }, A4);
    pdf.missing = await writePdf(join(dir, 'missing.pdf'), { ...planted, slidePath: join(dir, 'moved-away.tif') }, A4);
    // CMU-1-Small-Region is the planted slide's source: same size, other bytes.
    pdf.changed = await writePdf(join(dir, 'changed.pdf'), { ...planted, slidePath: CMU }, { ...A4, topRegions: 1 });
    const model = planted.model as NonNullable<SlideReport['model']>;
    const validation = { by: 'Pathology QA Board, Example Hospital', date: '2026-03-01', reference: 'QA-2026-017', intendedUse: 'H&E skin, 20x, research triage' };
    pdf.validated = await writePdf(join(dir, 'validated.pdf'), { ...planted, diagnostic: true, model: { ...model, name: 'skin-vit-b16', demo: false, validation } }, { ...A4, topRegions: 0 });
    pdf.unvalidated = await writePdf(join(dir, 'unvalidated.pdf'), { ...planted, model: { ...model, name: 'skin-vit-b16', demo: false } }, { ...A4, topRegions: 0 });
    pdf.many = await writePdf(join(dir, 'many.pdf'), manyRegions(planted), { ...A4, topRegions: 2 });
    pdf.builtinFonts = await writePdf(join(dir, 'builtin.pdf'), planted, { ...A4, topRegions: 1 }, { fonts: findReportFonts(['/nonexistent-font-dir']) });
    pdf.cjk = await writePdf(join(dir, 'cjk.pdf'), withNotes(planted, CJK_NOTES), { ...A4, topRegions: 2 });
  }, 180_000);

  afterAll(() => {
    if (dir !== undefined && process.env.FLASHSLIDE_KEEP_TEST_OUTPUT === undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('sets the title metadata, A4 page size, and numbers every page "Page n of N"', () => {
    const meta = info(pdf.full);
    expect(meta).toMatch(/^Title:\s+flashslide anomaly report — planted-CMU-1\.tif$/m);
    expect(meta).toMatch(/^Author:\s+flashslide$/m);
    expect(meta).toMatch(/^Creator:\s+flashslide/m);
    expect(meta).toMatch(/^Producer:\s+flashslide$/m);
    expect(meta).toMatch(/^CreationDate:\s+\S/m);
    expect(meta).toMatch(/^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)/m);
    const n = pages(pdf.full);
    const t = text(pdf.full);
    for (let i = 1; i <= n; i++) expect(t).toContain(`Page ${i} of ${n}`);
    expect(t).not.toContain(`Page ${n + 1} of`);
  });

  it('sets Chinese, Japanese and Korean notes in Noto Sans CJK (not as empty boxes), and what no font has as ?', () => {
    const fonts = run('pdffonts', [pdf.cjk]);
    expect(fonts).toMatch(/NotoSansCJK/);
    const t = text(pdf.cjk).replace(/\s+/g, '');
    for (const note of CJK_NOTES.slice(0, 2)) expect(t).toContain(note.replace(/\s+/g, ''));
    expect(t).toContain('疑似肿瘤细胞?复查');
    expect(t).toContain('山田太郎');
    // A report without such text embeds no CJK face.
    expect(run('pdffonts', [pdf.full])).not.toMatch(/NotoSansCJK/);
  });

  it('uses US Letter when asked', () => {
    expect(info(pdf.letter)).toMatch(/^Page size:\s+612 x 792 pts \(letter\)/m);
  });

  it('identifies the slide, the analysis and the model, and says on page 1 and in every footer that the demo output is not diagnostic', () => {
    const t = text(pdf.full);
    const page1 = run('pdftotext', ['-layout', '-f', '1', '-l', '1', pdf.full, '-']);
    expect(page1).toContain('planted-CMU-1.tif');
    expect(page1).toContain(planted.analysisId);
    expect(page1).toContain(planted.model?.name ?? 'no model');
    expect(planted.slide.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(page1).toContain((planted.slide.fingerprint ?? '').slice(0, 12));
    expect(t).toContain(planted.slide.fingerprint ?? 'no fingerprint'); // in full, in the provenance section
    expect(page1).toContain('NOT DIAGNOSTIC — demo model with random weights');
    expect(page1).toMatch(/2,220 × 2,967 px/);
    expect(page1).toContain('0.4990 µm/px');
    const footers = t.split('\f').filter((p) => p.trim() !== '');
    expect(footers.length).toBe(pages(pdf.full));
    for (const p of footers) expect(p).toContain('NOT DIAGNOSTIC: demo model with random weights');
    // Score method parameters and timings, as key/value lists.
    expect(t).toContain(planted.scoring?.method ?? 'no method');
    for (const key of Object.keys(planted.scoring?.params ?? {})) expect(t).toContain(key);
    expect(t).toMatch(/Inference\s+\d/);
    expect(t).toMatch(/Total\s+\d/);
  });

  it('prints a validated model\'s validation record without a not-diagnostic banner, and names a missing record as the reason otherwise', () => {
    const validated = text(pdf.validated);
    expect(validated).not.toContain('NOT DIAGNOSTIC');
    for (const field of ['Pathology QA Board, Example Hospital', '2026-03-01', 'QA-2026-017', 'H&E skin, 20x, research triage']) expect(validated).toContain(field);
    expect(images(pdf.validated)).toHaveLength(1); // topRegions 0: the overview only
    const unvalidated = text(pdf.unvalidated);
    expect(unvalidated).toContain('NOT DIAGNOSTIC — model without a validation record');
    expect(unvalidated).toContain('NOT DIAGNOSTIC: model without a validation record');
  });

  it('lists every region with its rank and max score as loadSlideReport ranks them, with verdicts, notes and reviewers', () => {
    const t = text(pdf.full);
    for (const r of planted.regions) expect(t).toMatch(new RegExp(`^\\s*${r.rank}\\s+${fmtScore(r.scoreMax).replace('.', '\\.')}\\s+${fmtScore(r.scoreMean).replace('.', '\\.')}`, 'm'));
    expect(t).toContain('confirmed');
    expect(t).toContain('rejected');
    expect(t).toContain('unsure');
    // The note's two lines (quotes, comma, umlauts, µ and ≥ intact), and the reviewer's name.
    expect(t).toContain('Zellkern größer, "atypisch"');
    expect(t).toContain('µm ≥ 2');
    expect(t).toContain(REVIEWER);
    expect(t).toContain('stain artefact, folded edge');
  });

  it('keeps the rejected region in the table and marks its crop as rejected', () => {
    const t = text(pdf.full);
    const rejected = planted.regions.find((r) => r.review?.verdict === 'rejected');
    expect(rejected?.rank).toBe(2);
    expect(t).toMatch(new RegExp(`^\\s*2\\s+${fmtScore(rejected?.scoreMax).replace('.', '\\.')}.*rejected`, 'm'));
    expect(t).toContain('REJECTED BY REVIEWER');
  });

  it('embeds the overview and one crop per top region (fewer with a smaller topRegions), and renders with pdftoppm', () => {
    const n = planted.regions.length;
    const full = images(pdf.full).length;
    const top3 = images(pdf.top3).length;
    expect(full).toBeGreaterThanOrEqual(1 + Math.min(12, n));
    expect(top3).toBeGreaterThanOrEqual(1 + Math.min(3, n));
    expect(top3).toBeLessThan(full);
    expect(images(pdf.full).filter((l) => /\bjpeg\b/.test(l)).length).toBe(1 + Math.min(12, n));
    const out = join(dir, 'render');
    run('pdftoppm', ['-r', '60', '-png', pdf.full, out]);
    expect(readdirSync(dir).filter((f) => f.startsWith('render') && f.endsWith('.png')).length).toBe(pages(pdf.full));
    for (const p of [pdf.top3, pdf.letter, pdf.failed, pdf.missing]) run('pdftoppm', ['-r', '30', '-png', '-f', '1', '-l', '1', p, join(dir, 'smoke')]);
  });

  it('continues a long regions table over pages with the header row repeated, and prints a note too long for it in full', () => {
    const byPage = text(pdf.many).split('\f');
    const tablePages = byPage.filter((p) => /^\s*\d+\s+\d+\.\d{3}\s+\d+\.\d{3}\s+\d/m.test(p));
    expect(tablePages.length).toBeGreaterThanOrEqual(2);
    for (const p of tablePages) expect(p).toMatch(/Rank\s+Max\s+Mean\s+Area\s+Centroid x, y\s+Verdict\s+Note\s+Reviewer/);
    expect(tablePages.slice(1).every((p) => p.includes('Anomalous regions (continued)'))).toBe(true);
    for (const rank of [1, 45, 90]) expect(byPage.join('')).toMatch(new RegExp(`^\\s*${rank}\\s+\\d+\\.\\d{3}`, 'm'));
    const notes = byPage.join('').split('Reviewer notes in full').at(-1) ?? '';
    expect(notes).toContain('Befund: atypische Kerne');
    expect(notes).toContain('ENDE-DER-NOTIZ');
  });

  it('gives a failed analysis one page with its identity and the failure reason, and no figures', () => {
    expect(pages(pdf.failed)).toBe(1);
    const t = text(pdf.failed);
    expect(t).toContain('Analysis failed');
    expect(t).toContain('corrupt slide: damaged TIFF, directory offset beyond end of file');
    expect(t).toContain('broken.svs');
    expect(t).toContain('0123456789abcdef01234567');
    expect(t).toContain('2026-01-02 03:04 UTC');
    expect(images(pdf.failed)).toHaveLength(0);
  });

  it('says "No anomalous regions" for a finished slide without regions', () => {
    const t = text(pdf.noRegions);
    expect(t).toContain('No anomalous regions');
    expect(images(pdf.noRegions)).toHaveLength(1); // the overview only
  });

  it('still renders when the slide file is gone: a note instead of the slide images, the heatmap and table kept', () => {
    const t = text(pdf.missing);
    expect(t).toContain('Slide images unavailable');
    expect(t).toContain('no such file');
    for (const r of planted.regions) expect(t).toContain(fmtScore(r.scoreMax));
    expect(images(pdf.missing)).toHaveLength(1 + Math.min(12, planted.regions.length)); // the overview + heatmap insets, no crops
    expect(images(pdf.missing).filter((l) => /\bjpeg\b/.test(l))).toHaveLength(1);
  });

  it('warns when the file at the slide path is not the one analysed', () => {
    const t = text(pdf.changed);
    expect(t).toContain('The slide file has changed since it was analysed');
    expect(t).toContain((planted.slide.fingerprint ?? '').slice(0, 16));
    expect(text(pdf.full)).not.toContain('has changed since');
  });

  it('falls back to Helvetica without DejaVu, writing characters outside WinAnsi as "?"', () => {
    const t = text(pdf.builtinFonts);
    expect(run('pdffonts', [pdf.builtinFonts])).toContain('Helvetica');
    expect(run('pdffonts', [pdf.full])).toContain('DejaVuSans');
    expect(t).toContain('Zellkern größer, "atypisch"'); // Latin-1 survives
    expect(t).toContain('µm ? 2'); // ≥ does not
  });

  it('streams into the caller\'s stream without ending it, and rejects bad options', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const failed = await loadSlideReport(join(dir, 'data', 'broken-0123456789ab'));
    await writePdfReport(failed, A4, out);
    expect(out.writableEnded).toBe(false);
    const bytes = Buffer.concat(chunks);
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    expect(bytes.subarray(-6).toString()).toMatch(/%%EOF\s*$/);
    await expect(writePdfReport(failed, { ...A4, topRegions: -1 }, new PassThrough())).rejects.toThrow(/topRegions/);
    await expect(writePdfReport(failed, { ...A4, paper: 'a3' as 'a4' }, new PassThrough())).rejects.toThrow(/paper/);
  });
});
