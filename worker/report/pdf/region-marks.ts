/**
 * Regions drawn over the report's images: outlines and rank numbers on the overview and on
 * crops. Vectors drawn by pdfkit rather than pixels burnt into the rasters, so lines stay crisp
 * at any zoom and the numbers are text a reader can search.
 */
import type { ColormapName } from '../../store/colormap.js';
import type { ReportRegion } from '../slide-report.js';
import { put, widthOf, type Pdf } from './pdf-layout.js';
import { isRejected } from './report-facts.js';

/** Region outline colour per ramp: one the ramp never takes, so outlines read over hot cells. */
export const OUTLINE_COLOUR: Record<ColormapName, string> = { inferno: '#1ad1ff', viridis: '#ff3fd2', jet: '#ffffff' };
/** Dark edge under light lines, so they read over pale glass and bright heat alike. */
export const HALO = '#08141f';
const REJECTED_OUTLINE = '#c8cdd2';
/** Other regions on a crop: light, so the region the block is about stands out. */
const NEIGHBOUR_OUTLINE = '#f2f4f6';

/** Maps level-0 pixels onto a placed image. */
export interface Placement {
  x: number;
  y: number;
  /** Points per level-0 pixel. */
  scale: number;
  /** Level-0 pixel at the image's top-left corner. */
  originX: number;
  originY: number;
  width: number;
  height: number;
}

const px = (p: Placement, x: number): number => p.x + (x - p.originX) * p.scale;
const py = (p: Placement, y: number): number => p.y + (y - p.originY) * p.scale;

/**
 * The rings as one path, written as a single content operation: pdfkit keeps every operation
 * as its own small buffer until the page ends, and an outline of a few hundred cells would
 * otherwise cost thousands of them.
 */
function tracePath(pdf: Pdf, p: Placement, rings: readonly (readonly [number, number])[][]): void {
  const ops: string[] = [];
  for (const ring of rings) {
    ring.forEach(([x, y], i) => ops.push(`${px(p, x).toFixed(2)} ${py(p, y).toFixed(2)} ${i === 0 ? 'm' : 'l'}`));
    ops.push('h');
  }
  if (ops.length > 0) pdf.doc.addContent(ops.join('\n'));
}

export interface OutlineStyle {
  colour: string;
  width: number;
  dashed?: boolean;
  /** Opacity of the dark halo under the line (default 0.55). */
  halo?: number;
}

/** A region's outline with a dark halo under it, clipped to the image. */
export function drawOutline(pdf: Pdf, p: Placement, region: ReportRegion, style: OutlineStyle): void {
  const { doc } = pdf;
  doc.save();
  doc.rect(p.x, p.y, p.width, p.height).clip();
  doc.lineJoin('round');
  tracePath(pdf, p, region.outline);
  doc.lineWidth(style.width + 1.6).strokeColor(HALO).strokeOpacity(style.halo ?? 0.55).stroke();
  tracePath(pdf, p, region.outline);
  if (style.dashed === true) doc.dash(2.4, { space: 1.6 });
  doc.lineWidth(style.width).strokeColor(style.colour).strokeOpacity(1).stroke();
  doc.restore();
}

interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const overlaps = (a: Rect, b: Rect, gap = 0.8): boolean => a.x0 < b.x1 + gap && a.x1 + gap > b.x0 && a.y0 < b.y1 + gap && a.y1 + gap > b.y0;

/**
 * Places rank labels beside their regions without covering each other: corners and sides of
 * the region first, then the same positions further out (with a leader line back to the
 * region); the first free spot inside the image wins. Regions cluster (one lesion often makes
 * several), and overlapping numbers are worse than none, so a label with no free spot is left out.
 */
export class LabelPlacer {
  private readonly placed: Rect[] = [];

  constructor(
    private readonly pdf: Pdf,
    private readonly p: Placement,
  ) {}

  /** Draws `rank` next to the level-0 box; returns false when there was no room. */
  label(rank: number, bbox: readonly [number, number, number, number], muted: boolean, size = 6.2): boolean {
    const text = String(rank);
    const w = Math.max(size * 1.45, widthOf(this.pdf, text, { font: 'bold', size }) + size * 0.8);
    const h = size * 1.45;
    const [bx, by, bw, bh] = bbox;
    const a: Rect = { x0: px(this.p, bx), y0: py(this.p, by), x1: px(this.p, bx + bw), y1: py(this.p, by + bh) };
    const inside: Rect = { x0: this.p.x + 1, y0: this.p.y + 1, x1: this.p.x + this.p.width - 1, y1: this.p.y + this.p.height - 1 };
    const midX = (a.x0 + a.x1) / 2;
    const midY = (a.y0 + a.y1) / 2;
    const fill = muted ? '#5b636d' : HALO;
    for (let ring = 0; ring < 6; ring++) {
      const d = 1.5 + ring * (h + 1);
      // Label centres around the region, each with the point of the region its leader goes to.
      const spots: [number, number, number, number][] = [
        [a.x1 + d + w / 2, a.y0 - d - h / 2, a.x1, a.y0],
        [a.x0 - d - w / 2, a.y0 - d - h / 2, a.x0, a.y0],
        [a.x1 + d + w / 2, a.y1 + d + h / 2, a.x1, a.y1],
        [a.x0 - d - w / 2, a.y1 + d + h / 2, a.x0, a.y1],
        [a.x1 + d + w / 2, midY, a.x1, midY],
        [a.x0 - d - w / 2, midY, a.x0, midY],
        [midX, a.y0 - d - h / 2, midX, a.y0],
        [midX, a.y1 + d + h / 2, midX, a.y1],
      ];
      for (const [cx, cy, lx, ly] of spots) {
        const r: Rect = { x0: cx - w / 2, y0: cy - h / 2, x1: cx + w / 2, y1: cy + h / 2 };
        if (r.x0 < inside.x0 || r.y0 < inside.y0 || r.x1 > inside.x1 || r.y1 > inside.y1) continue;
        if (this.placed.some((q) => overlaps(q, r))) continue;
        this.placed.push(r);
        if (ring > 0) this.pdf.doc.save().moveTo(lx, ly).lineTo(cx, cy).lineWidth(0.5).strokeColor(fill).strokeOpacity(0.85).stroke().restore();
        this.pdf.doc.save().roundedRect(r.x0, r.y0, w, h, h / 2).fillColor(fill).fillOpacity(0.88).fill().restore();
        put(this.pdf, text, r.x0, r.y0 + size * 0.17, { font: 'bold', size, colour: '#ffffff', width: w, align: 'center' });
        return true;
      }
    }
    return false;
  }
}

/** A region too small on the page for its outline to read: a box around it, with the halo. */
function drawBox(pdf: Pdf, p: Placement, region: ReportRegion, style: OutlineStyle, pad: number): void {
  const [bx, by, bw, bh] = region.bbox;
  const x = px(p, bx) - pad;
  const y = py(p, by) - pad;
  const w = bw * p.scale + 2 * pad;
  const h = bh * p.scale + 2 * pad;
  const { doc } = pdf;
  doc.save();
  doc.rect(p.x, p.y, p.width, p.height).clip();
  doc.rect(x, y, w, h).lineWidth(style.width + 1.4).strokeColor(HALO).strokeOpacity(style.halo ?? 0.55).stroke();
  if (style.dashed === true) doc.dash(2.4, { space: 1.6 });
  doc.rect(x, y, w, h).lineWidth(style.width).strokeColor(style.colour).strokeOpacity(1).stroke();
  doc.restore();
}

/** Below this size on the page (points), a region, or the typical polygon of one, is boxed rather than outlined. */
const MIN_OUTLINE_PT = 14;
const MIN_POLYGON_PT = 5;
const BOX_PAD_PT = 1.5;

/** Mean extent on the page of a region's polygons (cells touching only at corners make many tiny ones). */
function meanPolygonPt(region: ReportRegion, scale: number): number {
  if (region.outline.length === 0) return 0;
  let sum = 0;
  for (const ring of region.outline) {
    const xs = ring.map((q) => q[0]);
    const ys = ring.map((q) => q[1]);
    sum += Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  }
  return (sum / region.outline.length) * scale;
}

/**
 * Every region on the overview, rejected ones dashed and grey, numbered up to `maxLabels`.
 * On a whole slide a region of a few cells is a speck, and a cell-by-cell outline a blot, so
 * such regions get a box around them instead.
 */
export function drawRegionsOnOverview(pdf: Pdf, p: Placement, regions: readonly ReportRegion[], colormap: ColormapName, maxLabels: number): void {
  const small = (r: ReportRegion): boolean => Math.max(r.bbox[2], r.bbox[3]) * p.scale < MIN_OUTLINE_PT || meanPolygonPt(r, p.scale) < MIN_POLYGON_PT;
  // Lowest rank last, so the most anomalous outline sits on top.
  for (const r of [...regions].reverse()) {
    const rejected = isRejected(r);
    const style: OutlineStyle = { colour: rejected ? REJECTED_OUTLINE : OUTLINE_COLOUR[colormap], width: 0.9, dashed: rejected };
    if (small(r)) drawBox(pdf, p, r, style, BOX_PAD_PT);
    else drawOutline(pdf, p, r, style);
  }
  // Labels in rank order, so the best spots go to the most anomalous regions.
  const placer = new LabelPlacer(pdf, p);
  for (const r of regions) {
    if (r.rank > maxLabels) break;
    const [bx, by, bw, bh] = r.bbox;
    const pad = small(r) ? BOX_PAD_PT / p.scale : 0;
    placer.label(r.rank, [bx - pad, by - pad, bw + 2 * pad, bh + 2 * pad], isRejected(r));
  }
}

/** The region and its neighbours on a crop: the region solid, others thin and dashed, each numbered. */
export function drawRegionsOnCrop(pdf: Pdf, p: Placement, region: ReportRegion, all: readonly ReportRegion[], colormap: ColormapName): void {
  const x1 = p.originX + p.width / p.scale;
  const y1 = p.originY + p.height / p.scale;
  const near = all.filter((o) => {
    const [bx, by, bw, bh] = o.bbox;
    return o.id !== region.id && !(bx > x1 || by > y1 || bx + bw < p.originX || by + bh < p.originY);
  });
  for (const other of near) drawOutline(pdf, p, other, { colour: NEIGHBOUR_OUTLINE, width: 0.55, dashed: true, halo: 0.25 });
  // Solid even when rejected (grey then): dashes mean "another region" on a crop.
  drawOutline(pdf, p, region, { colour: isRejected(region) ? REJECTED_OUTLINE : OUTLINE_COLOUR[colormap], width: 1.4 });
  const placer = new LabelPlacer(pdf, p);
  placer.label(region.rank, region.bbox, false, 7);
  for (const other of near) placer.label(other.rank, other.bbox, true, 5.6);
}

