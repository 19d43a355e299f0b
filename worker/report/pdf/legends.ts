/**
 * The keys to the report's images: the colour bar with its threshold mark, the legend of line
 * styles, and the scale bar on crops. Vectors, so ticks and numbers stay sharp and searchable.
 */
import type { ColormapName } from '../../store/colormap.js';
import type { Colouring } from '../../store/heatmap-figure.js';
import { fmtScore, niceLength } from './format.js';
import { put, STYLE, widthOf, type Pdf } from './pdf-layout.js';
import { HALO, OUTLINE_COLOUR, type Placement } from './region-marks.js';

/** A scale bar of a round length in the image's lower left corner, on a light plate. */
export function drawScaleBar(pdf: Pdf, p: Placement, umPerPoint: number): void {
  const um = niceLength((p.width * 0.25) * umPerPoint);
  const len = um / umPerPoint;
  const label = um >= 1000 ? `${um / 1000} mm` : `${um} µm`;
  const size = 6.8;
  const lw = widthOf(pdf, label, { size, font: 'bold' });
  const plateW = Math.max(len, lw) + 10;
  const x = p.x + 6;
  const y = p.y + p.height - 24;
  pdf.doc.save().roundedRect(x, y, plateW, 18, 2).fillColor('#ffffff').fillOpacity(0.82).fill().restore();
  put(pdf, label, x + (plateW - lw) / 2, y + 2.2, { size, font: 'bold', colour: STYLE.ink });
  pdf.doc.save().rect(x + (plateW - len) / 2, y + 12, len, 2.6).fillColor('#111111').fill().restore();
}

/** Score values worth a tick between lo and hi: round steps, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * The colour bar: the ramp from min to max with round ticks, the ends labelled with the exact
 * range, the threshold as a black mark with its value, and the part at or above it bracketed.
 * Returns the height used.
 */
export function drawColourBar(pdf: Pdf, x: number, y: number, width: number, colouring: Colouring, title: string): number {
  const { doc } = pdf;
  const barY = y + 22;
  const barH = 9;
  const { lo, hi, lut, threshold } = colouring;
  const grad = doc.linearGradient(x, 0, x + width, 0);
  for (let i = 0; i <= 16; i++) {
    const k = Math.round((i / 16) * 255) * 3;
    grad.stop(i / 16, `#${[lut[k], lut[k + 1], lut[k + 2]].map((v) => (v as number).toString(16).padStart(2, '0')).join('')}`);
  }
  doc.save().rect(x, barY, width, barH).fill(grad).restore();
  doc.save().rect(x, barY, width, barH).lineWidth(0.5).strokeColor('#6b737c').stroke().restore();
  put(pdf, title, x, y, { font: 'bold', size: STYLE.size.small, colour: STYLE.ink });

  const at = (v: number): number => (hi > lo ? x + ((v - lo) / (hi - lo)) * width : x + width / 2);
  const size = STYLE.size.tiny;
  const labelled: { x0: number; x1: number }[] = [];
  const tick = (v: number, text: string, bold: boolean, force: boolean): void => {
    const tx = at(v);
    const tw = widthOf(pdf, text, { size, font: bold ? 'bold' : 'body' });
    const lx = Math.min(Math.max(tx - tw / 2, x - 4), x + width - tw + 4);
    if (!force && labelled.some((l) => lx < l.x1 + 4 && lx + tw > l.x0 - 4)) return;
    labelled.push({ x0: lx, x1: lx + tw });
    doc.save().moveTo(tx, barY + barH).lineTo(tx, barY + barH + 3).lineWidth(0.5).strokeColor('#4b535c').stroke().restore();
    put(pdf, text, lx, barY + barH + 4, { size, font: bold ? 'bold' : 'body', colour: bold ? STYLE.ink : STYLE.muted });
  };
  tick(lo, `${fmtScore(lo)} min`, true, true);
  tick(hi, `max ${fmtScore(hi)}`, true, true);
  for (const v of niceTicks(lo, hi)) tick(v, String(v), false, false);

  if (Number.isFinite(threshold) && threshold >= lo && threshold <= hi) {
    const tx = at(threshold);
    doc.save().rect(tx - 0.9, barY - 3, 1.8, barH + 6).fillColor('#000000').fill().restore();
    // Bracket over the anomalous part of the scale, with the threshold's value at its start.
    const by = barY - 6;
    doc.save().moveTo(tx, by + 3).lineTo(tx, by).lineTo(x + width, by).lineTo(x + width, by + 3).lineWidth(0.7).strokeColor(STYLE.banner.danger.border).stroke().restore();
    const label = `threshold ${fmtScore(threshold)} — anomalous at or above`;
    const lw = widthOf(pdf, label, { size, font: 'bold' });
    const lx = Math.max(x + 90, Math.min(tx, x + width - lw));
    put(pdf, label, lx, by - 9, { size, font: 'bold', colour: STYLE.banner.danger.ink });
  }
  return barY + barH + 14 - y;
}

/** One legend row: swatches and what they mean. Returns the height used. */
export function drawLegend(pdf: Pdf, x: number, y: number, width: number, colormap: ColormapName, tissueColour: readonly [number, number, number]): number {
  const { doc } = pdf;
  const size = STYLE.size.tiny;
  const items: { draw: (sx: number, sy: number) => void; text: string }[] = [
    {
      text: 'tissue boundary',
      draw: (sx, sy) => doc.save().moveTo(sx, sy).lineTo(sx + 14, sy).lineWidth(1.4).strokeColor([tissueColour[0], tissueColour[1], tissueColour[2]]).stroke().restore(),
    },
    {
      text: 'anomalous region (number = rank)',
      draw: (sx, sy) => {
        doc.save().moveTo(sx, sy).lineTo(sx + 14, sy).lineWidth(2.6).strokeColor(HALO).strokeOpacity(0.55).stroke().restore();
        doc.save().moveTo(sx, sy).lineTo(sx + 14, sy).lineWidth(1).strokeColor(OUTLINE_COLOUR[colormap]).stroke().restore();
      },
    },
    {
      text: 'rejected by reviewer',
      draw: (sx, sy) => doc.save().moveTo(sx, sy).lineTo(sx + 14, sy).lineWidth(1).dash(2.4, { space: 1.6 }).strokeColor('#8d949c').stroke().undash().restore(),
    },
    { text: 'cells below the threshold are drawn faint', draw: () => undefined },
  ];
  let cx = x;
  for (const item of items) {
    const tw = widthOf(pdf, item.text, { size });
    const swatch = item.text.startsWith('cells') ? 0 : 18;
    if (cx + swatch + tw > x + width) break;
    item.draw(cx, y + 4);
    put(pdf, item.text, cx + swatch, y, { size, colour: STYLE.muted });
    cx += swatch + tw + 14;
  }
  return 11;
}
