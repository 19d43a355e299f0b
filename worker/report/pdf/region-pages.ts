/**
 * The top regions at high resolution, two to a page: the slide around each region with its
 * outline, the heatmap cells of the same field, a scale bar, and the region's numbers and
 * verdict. Crops are read, embedded and released one at a time (pdfkit writes an embedded image
 * out at once, and each page as the next starts), so a report of two hundred regions needs no
 * more memory than one of two.
 */
import type { ColormapName } from '../../store/colormap.js';
import type { ReportRegion, SlideReport } from '../slide-report.js';
import { drawScaleBar } from './legends.js';
import { drawOutline, drawRegionsOnCrop, OUTLINE_COLOUR, type Placement } from './region-marks.js';
import { renderInset, type Colouring, type Heatmap } from '../../store/heatmap-figure.js';
import { fmtDate, fmtInt, fmtLength, fmtMm2, fmtScore, fmtSig } from './format.js';
import { contentBox, keyValues, lineHeight, measure, newPage, put, sectionTitle, STYLE, widthOf, type KeyValue, type Pdf } from './pdf-layout.js';
import { planCropField, readCropJpeg, type CropField, type CropOptions } from './region-crop.js';
import { centroidText, isRejected } from './report-facts.js';
import type { SlideCheck } from './slide-access.js';

export interface RegionPagesInput {
  report: SlideReport;
  check: SlideCheck;
  heatmap: Heatmap | null;
  colouring: Colouring | null;
  colormap: ColormapName;
  topRegions: number;
  crop?: Partial<CropOptions>;
  /**
   * The layout pass: pages are laid out exactly as in the real one, but nothing is read from
   * the slide and no image is made (the space they take does not depend on them).
   */
  dryRun: boolean;
  /** Awaited after each region (the caller lets the output drain). */
  afterEach: () => Promise<void>;
}

const TAGS: Record<string, { text: string; colour: string }> = {
  confirmed: { text: 'CONFIRMED', colour: '#1b5e20' },
  rejected: { text: 'REJECTED BY REVIEWER', colour: '#b3261e' },
  unsure: { text: 'UNSURE', colour: '#8a5a00' },
  open: { text: 'NOT REVIEWED', colour: '#6b737c' },
};

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

/** Height of one region block: two fit a page below the section title. */
function blockHeight(pdf: Pdf): number {
  return Math.floor((contentBox(pdf.doc).height - 40) / 2) - 12;
}

/** Draws the crops; returns the regions whose note did not fit their block. */
export async function drawRegionPages(pdf: Pdf, input: RegionPagesInput): Promise<ReportRegion[]> {
  const { report, check } = input;
  const top = report.regions.slice(0, Math.max(0, input.topRegions));
  if (top.length === 0) return [];
  const cut: ReportRegion[] = [];
  const n = report.regions.length;
  sectionTitle(pdf, 'Top regions at high resolution', `${top.length} of ${n} region${n === 1 ? '' : 's'}, in rank order`, blockHeight(pdf));
  const levels = check.source?.levels ?? [{ width: report.slide.width ?? 1, height: report.slide.height ?? 1, downsample: 1 }];
  const slide = { width: report.slide.width ?? 1, height: report.slide.height ?? 1, levels, mpp: report.slide.mpp ?? 1 };

  for (const region of top) {
    const h = blockHeight(pdf);
    const box = contentBox(pdf.doc);
    if (pdf.doc.y + h > box.bottom) newPage(pdf);
    const field = planCropField(region.bbox, slide, input.crop);
    // Loop-scoped: once drawn, the crop lives only in the PDF stream and its buffers can go.
    let jpeg: Buffer | null = null;
    let missing: string | null = null;
    if (check.source === null) missing = 'Slide image unavailable: the slide file could not be opened';
    else if (!input.dryRun) {
      try {
        jpeg = await readCropJpeg(check.source, field, input.crop);
      } catch (err) {
        missing = `This part of the slide could not be read: ${errorText(err)}`;
      }
    }
    const { heatmap, colouring } = input;
    const hasInset = heatmap !== null && colouring !== null;
    const inset = heatmap !== null && colouring !== null && !input.dryRun ? await renderInset(heatmap, colouring, field) : null;
    if (!drawRegionBlock(pdf, { ...input, region, field, jpeg, missing, inset, hasInset, height: h })) cut.push(region);
    await input.afterEach();
  }
  return cut;
}

interface BlockInput extends RegionPagesInput {
  region: ReportRegion;
  field: CropField;
  jpeg: Buffer | null;
  missing: string | null;
  inset: Buffer | null;
  /** Whether the block has an inset (its space is kept in the layout pass, which makes none). */
  hasInset: boolean;
  height: number;
}

/** Returns false when the note had to be cut short. */
function drawRegionBlock(pdf: Pdf, b: BlockInput): boolean {
  const { doc } = pdf;
  const box = contentBox(doc);
  const { region, report, field } = b;
  const y0 = doc.y;
  const rejected = isRejected(region);
  const verdict = region.review?.verdict ?? 'open';
  const tag = TAGS[verdict] ?? { text: verdict.toUpperCase(), colour: STYLE.muted };

  // Title row.
  put(pdf, `Region ${region.rank}`, box.left, y0, { font: 'bold', size: 11, colour: rejected ? STYLE.struck : STYLE.ink });
  const tw = widthOf(pdf, `Region ${region.rank}`, { font: 'bold', size: 11 });
  put(pdf, `rank ${region.rank} of ${report.regions.length}  ·  max ${fmtScore(region.scoreMax)}  ·  ${fmtMm2(region.areaMm2)}`, box.left + tw + 8, y0 + 3, {
    size: STYLE.size.small,
    colour: STYLE.muted,
  });
  const tagW = widthOf(pdf, tag.text, { font: 'bold', size: STYLE.size.small }) + 12;
  if (rejected) doc.save().roundedRect(box.right - tagW, y0 - 1, tagW, 14, 2).fillColor(tag.colour).fill().restore();
  else doc.save().roundedRect(box.right - tagW, y0 - 1, tagW, 14, 2).lineWidth(0.9).strokeColor(tag.colour).stroke().restore();
  put(pdf, tag.text, box.right - tagW + 6, y0 + 2.2, { font: 'bold', size: STYLE.size.small, colour: rejected ? '#ffffff' : tag.colour });

  // The crop, square, down the left.
  const iy = y0 + 20;
  const side = b.height - 20 - 16;
  const ix = box.left;
  const scale = side / field.width;
  const p: Placement = { x: ix, y: iy, width: side, height: side, scale, originX: field.x, originY: field.y };
  // Without the image the outlines still show the region's shape and size (from the result).
  if (b.jpeg !== null) doc.image(b.jpeg, ix, iy, { width: side, height: side });
  else doc.save().rect(ix, iy, side, side).fillColor('#e9ecef').fill().restore();
  drawRegionsOnCrop(pdf, p, region, report.regions, b.colormap);
  drawScaleBar(pdf, p, (field.width * (report.slide.mpp ?? 1)) / side);
  if (b.jpeg === null && !b.dryRun) {
    put(pdf, b.missing ?? 'No image', ix + 12, iy + 10, { font: 'bold', size: STYLE.size.body, colour: STYLE.banner.warning.ink, width: side - 24, align: 'center', height: 40, wrap: true });
  }
  doc.save().rect(ix, iy, side, side).lineWidth(rejected ? 1.6 : 0.5).strokeColor(rejected ? TAGS.rejected?.colour ?? '#b3261e' : '#9aa1a9').stroke().restore();
  if (rejected && b.jpeg !== null) {
    const label = 'REJECTED';
    const lw = widthOf(pdf, label, { font: 'bold', size: 8 }) + 10;
    doc.save().rect(ix + side - lw - 5, iy + 5, lw, 14).fillColor('#b3261e').fillOpacity(0.9).fill().restore();
    put(pdf, label, ix + side - lw, iy + 8.2, { font: 'bold', size: 8, colour: '#ffffff' });
  }
  const levelText = `level ${field.level}${field.levelDownsample > 1 ? `, ÷${fmtSig(field.levelDownsample, 3)}` : ''}`;
  const resolution = b.jpeg === null ? '' : ` · ${fmtSig(field.umPerPx, 2)} µm/px (${levelText})`;
  put(pdf, `Field ${fmtLength(field.width * (report.slide.mpp ?? 1))} square${resolution} · solid: this region, dashed: others`, ix, iy + side + 4, {
    size: STYLE.size.tiny,
    colour: STYLE.faint,
    width: side,
  });

  // Right column: heatmap inset, then the region's numbers and verdict.
  const cx = ix + side + 14;
  const cw = box.right - cx;
  let cy = iy;
  if (b.hasInset) {
    const insetSide = Math.min(132, cw);
    if (b.inset !== null) doc.image(b.inset, cx, cy, { width: insetSide, height: insetSide });
    const ip: Placement = { x: cx, y: cy, width: insetSide, height: insetSide, scale: insetSide / field.width, originX: field.x, originY: field.y };
    drawOutline(pdf, ip, region, { colour: OUTLINE_COLOUR[b.colormap], width: 0.9 });
    doc.save().rect(cx, cy, insetSide, insetSide).lineWidth(0.5).strokeColor('#9aa1a9').stroke().restore();
    put(pdf, 'Heatmap cells of the same field (colour scale of the overview; grey: no tissue)', cx, cy + insetSide + 3, {
      size: STYLE.size.tiny,
      colour: STYLE.faint,
      width: cw,
      height: 18,
      wrap: true,
    });
    cy += insetSide + 24;
  }
  const rv = region.review;
  const rows: KeyValue[] = [
    { key: 'Max score', value: fmtScore(region.scoreMax), bold: true },
    { key: 'Mean score', value: fmtScore(region.scoreMean) },
    { key: 'Area', value: `${fmtMm2(region.areaMm2)} (${fmtInt(region.cells)} cells)` },
    { key: 'Centroid', value: `${centroidText(region)} µm` },
    { key: 'Verdict', value: rv === null ? 'not reviewed' : rv.verdict, bold: rv !== null, colour: tag.colour },
    ...(rv === null
      ? []
      : [
          { key: 'Reviewer', value: rv.reviewer || 'not named' },
          { key: 'Reviewed', value: fmtDate(rv.at) },
        ]),
  ];
  cy = keyValues(pdf, rows, cx, cy, cw, 58, STYLE.size.small + 0.3);
  let complete = true;
  if (rv !== null && rv.note !== '') {
    const bottom = iy + side + 12;
    put(pdf, 'Note', cx, cy + 2, { size: STYLE.size.small + 0.3, colour: STYLE.muted });
    const noteY = cy + 13;
    const lh = lineHeight(pdf, { size: STYLE.size.small + 0.3, lineGap: 0.5 });
    const room = Math.max(lh, Math.floor((bottom - noteY) / lh) * lh);
    const need = measure(pdf, rv.note, cw - 8, { size: STYLE.size.small + 0.3, lineGap: 0.5 });
    const hgt = Math.min(room, need) + 2;
    doc.save().rect(cx, noteY - 2, 2, hgt).fillColor(STYLE.rule).fill().restore();
    put(pdf, rv.note, cx + 7, noteY, { size: STYLE.size.small + 0.3, width: cw - 8, height: hgt, wrap: true, lineGap: 0.5 });
    if (need > room) {
      put(pdf, '(continued under "Reviewer notes in full")', cx + 7, Math.min(noteY + hgt + 1, bottom), { size: STYLE.size.tiny, colour: STYLE.faint });
      complete = false;
    }
  }
  doc.y = y0 + b.height + 12;
  return complete;
}
