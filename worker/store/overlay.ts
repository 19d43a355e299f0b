/**
 * overlay.png: the result as a figure a person can read without the viewer. The slide (default
 * 2000 px on its long side) with the heatmap blended over the tissue, strongly where cells are at
 * or above the threshold and faintly below it (so a slide without anomalies does not light up),
 * the tissue boundary, the anomalous regions outlined and numbered by rank (the numbers of the
 * viewer's region list and of the reports), and a panel below: what was analysed, a colour bar
 * with the score scale and the threshold marked, and a legend. Colours are the viewer's: the same
 * ramp over the same [min, max] of the slide's tissue scores.
 *
 * The picture is heatmap-figure.ts's overview (shared with the PDF report); outlines, numbers and
 * the panel are an SVG composited by sharp (libvips renders the text with the system's fonts).
 */
import sharp from 'sharp';
import type { RgbImage } from '../slide/slide-source.js';
import { thumbnailSize } from '../slide/thumbnail.js';
import { colormapLut, type ColormapName } from './colormap.js';
import { StoreArgumentError } from './errors.js';
import { overviewPixels, type Heatmap } from './heatmap-figure.js';
import type { RankedRegion } from './result-types.js';

export interface OverlayInput {
  /** Level-0 size of the slide. */
  slideWidth: number;
  slideHeight: number;
  /** The whole slide, downsampled (any size: it is fitted); null when it could not be read. */
  thumbnail: RgbImage | null;
  /** The grid and its geometry; min/max/threshold come from its meta (null min: no tissue). */
  heatmap: Heatmap;
  /** tissue.png (white = tissue, covering the slide), or null. */
  tissuePng: Buffer | null;
  /** Ranked regions (worker/store/ranked-regions.ts), level-0 outlines. */
  regions: readonly RankedRegion[];
  /** First line of the panel, e.g. the slide's file name. */
  title: string;
  /** Second line: model, score method, slide score. */
  subtitle: string;
}

export interface OverlayOptions {
  /** Long side of the slide image in pixels. */
  longSide: number;
  colormap: ColormapName;
  /** Regions numbered on the figure (all are outlined). */
  maxLabels: number;
}

export const OVERLAY_DEFAULTS: Readonly<OverlayOptions> = { longSide: 2000, colormap: 'inferno', maxLabels: 60 };

const OUTLINE = '#1ad1ff';
const HALO = '#08141f';
const FONT = "DejaVu Sans, Verdana, sans-serif";

const esc = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A step of 1, 2 or 5 x 10^k giving about `count` ticks over `span`. */
function tickStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}

function fmt(v: number, step: number): string {
  const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(step))));
  return v.toFixed(digits);
}

function regionMarks(regions: readonly RankedRegion[], scale: number, width: number, height: number, maxLabels: number, unit: number): string {
  const paths = regions
    .map((r) => r.outline.map((ring) => `M${ring.map(([x, y]) => `${(x * scale).toFixed(1)},${(y * scale).toFixed(1)}`).join('L')}Z`).join(''))
    .filter((d) => d !== '');
  const stroke = Math.max(2, unit * 0.9);
  let svg = `<g fill="none" stroke-linejoin="round"><path d="${paths.join('')}" stroke="${HALO}" stroke-opacity="0.6" stroke-width="${stroke * 2.2}"/>`;
  svg += `<path d="${paths.join('')}" stroke="${OUTLINE}" stroke-width="${stroke}"/></g>`;
  // Labels at each region's top-right corner, skipped where they would cover an earlier one.
  const radius = unit * 4.2;
  const placed: [number, number][] = [];
  for (const r of regions.slice(0, maxLabels)) {
    const [bx, by, bw] = r.bbox;
    const x = Math.min(width - radius, Math.max(radius, (bx + bw) * scale + radius * 0.6));
    const y = Math.min(height - radius, Math.max(radius, by * scale - radius * 0.6));
    if (placed.some(([px, py]) => Math.hypot(px - x, py - y) < radius * 2)) continue;
    placed.push([x, y]);
    svg += `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${radius.toFixed(1)}" fill="${HALO}" stroke="${OUTLINE}" stroke-width="${(stroke * 0.7).toFixed(1)}"/>`;
    svg += `<text x="${x.toFixed(1)}" y="${(y + radius * 0.38).toFixed(1)}" font-family="${FONT}" font-size="${(radius * 1.05).toFixed(1)}" font-weight="bold" fill="#ffffff" text-anchor="middle">${r.rank}</text>`;
  }
  return svg;
}

/** Where everything goes: the slide image, and in the panel below it the colour bar. */
export interface OverlayLayout {
  /** The slide image, placed at (left, 0). */
  image: { left: number; width: number; height: number };
  canvas: { width: number; height: number };
  /** One unit is 1/400 of the canvas width (5 px at 2000 px): every size follows it. */
  unit: number;
  bar: { x: number; y: number; width: number; height: number };
}

export function overlayLayout(slideWidth: number, slideHeight: number, longSide: number): OverlayLayout {
  const { width, height } = thumbnailSize(slideWidth, slideHeight, longSide);
  const canvasW = Math.max(width, 1000);
  const unit = canvasW / 400;
  const pad = unit * 6;
  const title = unit * 5.2;
  const text = unit * 3.6;
  const barY = Math.round(height + pad + title + text * 4.4);
  return {
    image: { left: Math.round((canvasW - width) / 2), width, height },
    canvas: { width: canvasW, height: Math.round(height + unit * 42) },
    unit,
    bar: { x: Math.round(pad), y: barY, width: Math.round(Math.min(canvasW - 2 * pad, unit * 190)), height: Math.round(unit * 4.5) },
  };
}

function panel(input: OverlayInput, layout: OverlayLayout, colormap: ColormapName): string {
  const { meta } = input.heatmap;
  const { unit } = layout;
  const top = layout.image.height;
  const width = layout.canvas.width;
  const pad = unit * 6;
  const title = unit * 5.2;
  const text = unit * 3.6;
  let svg = `<rect x="0" y="${top}" width="${width}" height="${layout.canvas.height - top}" fill="#ffffff"/>`;
  svg += `<text x="${pad}" y="${top + pad + title}" font-family="${FONT}" font-size="${title}" font-weight="bold" fill="#15202b">${esc(input.title)}</text>`;
  svg += `<text x="${pad}" y="${top + pad + title + text * 1.7}" font-family="${FONT}" font-size="${text}" fill="#3c4854">${esc(input.subtitle)}</text>`;
  const barTop = layout.bar.y;
  if (meta.min === null || meta.max === null) {
    return `${svg}<text x="${pad}" y="${barTop + text}" font-family="${FONT}" font-size="${text}" fill="#3c4854">No tissue found: nothing was scored.</text>`;
  }
  const { min, max } = meta;
  const { x: barX, width: barW, height: barH } = layout.bar;
  const lut = colormapLut(colormap);
  const stops = Array.from({ length: 33 }, (_, i) => {
    const k = Math.round((i / 32) * 255);
    return `<stop offset="${(i / 32).toFixed(4)}" stop-color="rgb(${lut[k * 3]},${lut[k * 3 + 1]},${lut[k * 3 + 2]})"/>`;
  }).join('');
  svg += `<defs><linearGradient id="ramp">${stops}</linearGradient></defs>`;
  svg += `<text x="${barX}" y="${barTop - text * 0.6}" font-family="${FONT}" font-size="${text}" font-weight="bold" fill="#15202b">Anomaly score (${esc(meta.scoreMethod)})</text>`;
  svg += `<rect x="${barX}" y="${barTop}" width="${barW}" height="${barH}" fill="url(#ramp)" stroke="#15202b" stroke-width="1"/>`;
  const span = max - min;
  const at = (v: number): number => barX + (span > 0 ? ((v - min) / span) * barW : barW / 2);
  const step = span > 0 ? tickStep(span, 6) : 1;
  const ticks: number[] = [];
  if (span > 0) for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) ticks.push(v);
  for (const v of ticks) {
    svg += `<line x1="${at(v)}" y1="${barTop + barH}" x2="${at(v)}" y2="${barTop + barH + unit * 1.6}" stroke="#15202b" stroke-width="1"/>`;
    svg += `<text x="${at(v)}" y="${barTop + barH + unit * 1.6 + text}" font-family="${FONT}" font-size="${text * 0.9}" fill="#3c4854" text-anchor="middle">${fmt(v, step)}</text>`;
  }
  const threshold = meta.threshold;
  if (Number.isFinite(threshold) && threshold >= min && threshold <= max) {
    const x = at(threshold);
    svg += `<rect x="${x - unit * 0.5}" y="${barTop - unit * 1.2}" width="${unit}" height="${barH + unit * 2.4}" fill="#15202b"/>`;
    const label = `threshold ${threshold.toFixed(3)}: anomalous at or above`;
    const anchor = x > barX + barW * 0.6 ? 'end' : 'start';
    svg += `<text x="${anchor === 'end' ? x - unit * 1.5 : x + unit * 1.5}" y="${barTop - text * 0.6}" font-family="${FONT}" font-size="${text * 0.9}" font-weight="bold" fill="#a3101c" text-anchor="${anchor}">${esc(label)}</text>`;
  } else {
    svg += `<text x="${barX + barW + unit * 2}" y="${barTop + barH * 0.8}" font-family="${FONT}" font-size="${text * 0.9}" fill="#a3101c">${Number.isFinite(threshold) ? `threshold ${threshold.toFixed(3)} is outside the scores` : 'no threshold: the method set none'}</text>`;
  }
  const legendY = barTop + barH + unit * 1.6 + text * 2.6;
  svg += `<text x="${barX}" y="${legendY}" font-family="${FONT}" font-size="${text * 0.9}" fill="#3c4854">Cells below the threshold are drawn faint. Cyan outlines: anomalous regions, numbered by rank as in the viewer and the reports (${input.regions.length} in all). Green: tissue boundary.</text>`;
  return svg;
}

/** The figure as a PNG. */
export async function renderOverlay(input: OverlayInput, options: Partial<OverlayOptions> = {}): Promise<Buffer> {
  const o = { ...OVERLAY_DEFAULTS, ...options };
  if (!(Number.isInteger(o.longSide) && o.longSide >= 200 && o.longSide <= 10000)) throw new StoreArgumentError(`overlay: long side ${o.longSide} must be an integer in 200..10000`);
  const { meta, grid } = input.heatmap;
  if (grid.length !== meta.rows * meta.cols) throw new StoreArgumentError(`overlay: heatmap has ${grid.length} cells, expected rows x cols = ${meta.rows} x ${meta.cols}`);
  const layout = overlayLayout(input.slideWidth, input.slideHeight, o.longSide);
  const { width, height, left } = layout.image;
  const colouring = meta.min === null || meta.max === null ? null : { lut: colormapLut(o.colormap), lo: meta.min, hi: meta.max, threshold: meta.threshold };
  const image = await overviewPixels(
    { slideWidth: input.slideWidth, slideHeight: input.slideHeight, thumbnail: input.thumbnail, heatmap: input.heatmap, colouring, tissuePng: input.tissuePng },
    { overviewSide: o.longSide },
  );
  const { width: canvasW, height: canvasH } = layout.canvas;
  const scale = width / input.slideWidth;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasW}" height="${canvasH}">` +
    `<g transform="translate(${left},0)">${regionMarks(input.regions, scale, width, height, o.maxLabels, layout.unit)}</g>` +
    panel(input, layout, o.colormap) +
    '</svg>';
  return sharp({ create: { width: canvasW, height: canvasH, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([
      { input: image.data, raw: { width: image.width, height: image.height, channels: 3 }, left, top: 0 },
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .removeAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
}

