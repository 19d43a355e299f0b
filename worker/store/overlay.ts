/**
 * overlay.png: the result as a figure a person can read without the viewer.
 *
 *   header   slide name; model, score method, slide score, region count
 *   image    the slide (default 2000 px on its long side, colours muted a little) with the
 *            heatmap over the tissue: strong where cells are at or above the threshold, faint
 *            and fading to nothing below it (a slide without anomalies stays H&E), the tissue
 *            boundary, the anomalous regions ringed (regions closer than a few pixels share a
 *            ring) and each numbered by its rank (the numbers of the viewer's region list and
 *            the reports) on its own innermost point, or beside it with a leader to a dot there
 *            (region-labels.ts); regions too crowded to number are listed in the legend
 *   footer   colour bar with the score scale and the threshold marked, legend
 *
 * Colours are the viewer's default: the same ramp (colormap.ts) over the same [min, max] of the
 * slide's tissue scores, so a colour means the same score in both. The heatmap raster is
 * heatmap-figure.ts's overview (shared with the PDF report), the rings region-outline.ts's, the
 * text overlay-legend.ts's SVG, composited by sharp.
 */
import sharp from 'sharp';
import type { RgbImage } from '../slide/slide-source.js';
import { thumbnailSize } from '../slide/thumbnail.js';
import type { ColormapName } from './colormap.js';
import { StoreArgumentError } from './errors.js';
import { FIGURE_DEFAULTS, heatmapColouring, overviewPixels, type Heatmap } from './heatmap-figure.js';
import { esc, fitText, FONT, footer, INK, INK_SOFT, textWidth, wrapParts } from './overlay-legend.js';
import { placeRegionLabels, type LabelPlan, type PlacedLabel } from './region-labels.js';
import { outlineRegions } from './region-outline.js';
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
  /** Header, first line, e.g. the slide's file name. */
  title: string;
  /** Header, second line: model, score method, slide score; wrapped at ' · '. */
  subtitle: string;
}

export interface OverlayOptions {
  /** Long side of the slide image in pixels (a smaller slide is not enlarged). */
  longSide: number;
  colormap: ColormapName;
  /** Heatmap colour weight over the slide at or above the threshold, and just below it. */
  opacityHot: number;
  opacityCold: number;
  /** Below the threshold the weight falls as t^coldFade towards the lowest score (0: flat). */
  coldFade: number;
  /** Saturation of the slide under the heatmap (1 = as scanned): muted H&E lets the ramp stand out. */
  underlaySaturation: number;
  /** Region rings. */
  outline: string;
  outlineHalo: string;
  /** Regions closer than twice this (in units, 1/400 of the long side) are ringed as one area. */
  mergeUnits: number;
  /** Regions numbered on the figure at most, best ranks first (all are ringed; the legend lists the others). */
  maxLabels: number;
}

/** Every default of the figure, in one place. */
export const OVERLAY_DEFAULTS: Readonly<OverlayOptions> = {
  longSide: 2000,
  colormap: 'inferno', // the viewer's default ramp (viewer/app/src/settings.ts)
  opacityHot: 0.6,
  opacityCold: 0.4,
  coldFade: 3,
  underlaySaturation: 0.55,
  outline: '#1ad1ff',
  outlineHalo: '#08141f',
  mergeUnits: 2.4,
  maxLabels: 60,
};

/** Where everything goes. */
export interface OverlayLayout {
  canvas: { width: number; height: number };
  /** One unit is 1/400 of the figure's long side (5 px at 2000 px): every size follows it. */
  unit: number;
  /** The slide image, placed at (left, top). */
  image: { left: number; top: number; width: number; height: number };
  /** Header text lines. */
  title: string;
  subtitle: string[];
  /** The colour bar; null without tissue (nothing scored). */
  bar: { x: number; y: number; width: number; height: number } | null;
}

/** A region's number on the figure, canvas pixels (placed by region-labels.ts). */
export type OverlayLabel = PlacedLabel;

const hex = (c: string): [number, number, number] => [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];

function checkOptions(options: Partial<OverlayOptions>): OverlayOptions {
  const o = { ...OVERLAY_DEFAULTS, ...options };
  if (!(Number.isInteger(o.longSide) && o.longSide >= 200 && o.longSide <= 10000)) throw new StoreArgumentError(`overlay: long side ${o.longSide} must be an integer in 200..10000`);
  for (const k of ['opacityHot', 'opacityCold', 'underlaySaturation'] as const) {
    if (!(o[k] >= 0 && o[k] <= 1)) throw new StoreArgumentError(`overlay: ${k} ${o[k]} must be in 0..1`);
  }
  if (!(o.mergeUnits >= 0 && o.mergeUnits <= 20)) throw new StoreArgumentError(`overlay: mergeUnits ${o.mergeUnits} must be in 0..20`);
  if (!(o.coldFade >= 0 && o.coldFade <= 10)) throw new StoreArgumentError(`overlay: coldFade ${o.coldFade} must be in 0..10`);
  for (const k of ['outline', 'outlineHalo'] as const) if (!/^#[0-9a-fA-F]{6}$/.test(o[k])) throw new StoreArgumentError(`overlay: ${k} '${o[k]}' must be #rrggbb`);
  return o;
}

function header(input: Pick<OverlayInput, 'title' | 'subtitle'>, width: number, unit: number): { title: string; subtitle: string[]; height: number } {
  const pad = unit * 6;
  const title = fitText(input.title, unit * 5.2, width - 2 * pad, true);
  const subtitle = wrapParts(input.subtitle.split(' · '), ' · ', unit * 3.4, width - 2 * pad);
  return { title, subtitle, height: Math.round(unit * 4 + unit * 5.2 + subtitle.length * unit * 4.9 + unit * 3.2) };
}

function headerSvg(title: string, subtitle: readonly string[], unit: number): string {
  const pad = unit * 6;
  let y = unit * 4 + unit * 5.2;
  let svg = `<text x="${pad}" y="${y}" font-family="${FONT}" font-size="${unit * 5.2}" font-weight="bold" fill="${INK}">${esc(title)}</text>`;
  for (const line of subtitle) {
    y += unit * 4.9;
    svg += `<text x="${pad}" y="${y}" font-family="${FONT}" font-size="${unit * 3.4}" fill="${INK_SOFT}">${esc(line)}</text>`;
  }
  return svg;
}

interface Plan {
  layout: OverlayLayout;
  headerSvg: string;
  footerSvg: string;
}

function plan(input: OverlayInput, o: OverlayOptions, unnumbered: readonly number[]): Plan {
  const { width, height } = thumbnailSize(input.slideWidth, input.slideHeight, o.longSide);
  const unit = Math.max(width, height, 1000) / 400;
  const canvasW = Math.max(width, Math.round(unit * 240));
  const head = header(input, canvasW, unit);
  const image = { left: Math.round((canvasW - width) / 2), top: head.height, width, height };
  const { meta } = input.heatmap;
  const foot = footer(
    { min: meta.min, max: meta.max, threshold: meta.threshold, scoreMethod: meta.scoreMethod, colormap: o.colormap },
    {
      opacityHot: o.opacityHot,
      opacityCold: o.opacityCold,
      coldFade: o.coldFade,
      outline: o.outline,
      outlineHalo: o.outlineHalo,
      tissueOutline: `rgb(${FIGURE_DEFAULTS.tissueOutline.join(',')})`,
      regions: input.regions.length,
      unnumbered,
    },
    canvasW,
    image.top + height,
    unit,
  );
  return {
    layout: { canvas: { width: canvasW, height: Math.round(image.top + height + foot.height) }, unit, image, title: head.title, subtitle: head.subtitle, bar: foot.bar },
    headerSvg: headerSvg(head.title, head.subtitle, unit),
    footerSvg: foot.svg,
  };
}

/** The figure's layout for a slide and its texts (the same as renderOverlay's). */
export function overlayLayout(input: OverlayInput, options: Partial<OverlayOptions> = {}): OverlayLayout {
  const o = checkOptions(options);
  return plan(input, o, labelPlan(input, o).unnumbered).layout;
}

/** Region labels: pill height and font size, in units. */
const LABEL_HEIGHT = 6.2;
const LABEL_FONT = 4.2;

/** Where the regions' numbers go, image pixels. */
function labelPlan(input: OverlayInput, o: OverlayOptions): LabelPlan {
  const { width, height } = thumbnailSize(input.slideWidth, input.slideHeight, o.longSide);
  const unit = Math.max(width, height, 1000) / 400;
  const h = Math.round(unit * LABEL_HEIGHT);
  return placeRegionLabels(input.regions, width / input.slideWidth, width, height, {
    unit,
    height: h,
    width: (text) => Math.max(h, Math.round(textWidth(text, unit * LABEL_FONT, true) + unit * 2.8)),
    maxLabels: o.maxLabels,
  });
}

/** Leaders and dots first, then the labels over them. Image pixels. */
function labelsSvg(labels: LabelPlan['labels'], unit: number, o: OverlayOptions): string {
  const font = unit * LABEL_FONT;
  const f = (v: number): string => v.toFixed(1);
  let under = '';
  let over = '';
  for (const l of labels) {
    if (l.leader !== null) {
      const { x1, y1, x2, y2 } = l.leader;
      under += `<line x1="${f(x1)}" y1="${f(y1)}" x2="${f(x2)}" y2="${f(y2)}" stroke="${o.outlineHalo}" stroke-opacity="0.85" stroke-width="${f(unit * 1.1)}" stroke-linecap="round"/>`;
      over += `<line x1="${f(x1)}" y1="${f(y1)}" x2="${f(x2)}" y2="${f(y2)}" stroke="#ffffff" stroke-width="${f(unit * 0.45)}" stroke-linecap="round"/>`;
      over += `<circle cx="${f(l.anchor.x)}" cy="${f(l.anchor.y)}" r="${f(unit * 0.75)}" fill="#ffffff" stroke="${o.outlineHalo}" stroke-width="${f(unit * 0.4)}"/>`;
    }
  }
  for (const l of labels) {
    const r = l.height / 2;
    over +=
      `<rect x="${l.x}" y="${l.y}" width="${l.width}" height="${l.height}" rx="${r}" fill="${o.outlineHalo}" fill-opacity="0.9" stroke="${o.outline}" stroke-width="${f(unit * 0.45)}"/>` +
      `<text x="${f(l.x + l.width / 2)}" y="${f(l.y + l.height / 2 + font * 0.36)}" font-family="${FONT}" font-size="${f(font)}" font-weight="bold" fill="#ffffff" text-anchor="middle">${esc(l.text)}</text>`;
  }
  return under + over;
}

/** The slide image resized to the figure and its colours muted (towards its own luma). */
async function underlay(thumbnail: RgbImage | null, width: number, height: number, saturation: number): Promise<RgbImage | null> {
  if (thumbnail === null) return null;
  let data: Buffer;
  if (thumbnail.width === width && thumbnail.height === height) data = Buffer.from(thumbnail.data);
  else {
    data = await sharp(thumbnail.data, { raw: { width: thumbnail.width, height: thumbnail.height, channels: 3 } })
      .resize(width, height, { fit: 'fill', kernel: thumbnail.width < width ? 'mitchell' : 'lanczos3' })
      .raw()
      .toBuffer();
  }
  if (saturation !== 1) {
    for (let p = 0; p + 2 < data.length; p += 3) {
      const r = data[p] as number;
      const g = data[p + 1] as number;
      const b = data[p + 2] as number;
      const y = (1 - saturation) * (0.299 * r + 0.587 * g + 0.114 * b);
      data[p] = y + saturation * r;
      data[p + 1] = y + saturation * g;
      data[p + 2] = y + saturation * b;
    }
  }
  return { data, width, height };
}

/** The figure, its layout, where its labels went and the ranks it could not number. */
export async function overlayFigure(
  input: OverlayInput,
  options: Partial<OverlayOptions> = {},
): Promise<{ png: Buffer; layout: OverlayLayout; labels: OverlayLabel[]; unnumbered: number[] }> {
  const o = checkOptions(options);
  const { meta, grid } = input.heatmap;
  if (grid.length !== meta.rows * meta.cols) throw new StoreArgumentError(`overlay: heatmap has ${grid.length} cells, expected rows x cols = ${meta.rows} x ${meta.cols}`);
  const { width, height } = thumbnailSize(input.slideWidth, input.slideHeight, o.longSide);
  const unit = Math.max(width, height, 1000) / 400;

  const image = await overviewPixels(
    {
      slideWidth: input.slideWidth,
      slideHeight: input.slideHeight,
      thumbnail: await underlay(input.thumbnail, width, height, o.underlaySaturation),
      heatmap: input.heatmap,
      colouring: heatmapColouring(meta, o.colormap),
      tissuePng: input.tissuePng,
    },
    { overviewSide: o.longSide, opacityHot: o.opacityHot, opacityCold: o.opacityCold, opacityHotAlone: Math.max(o.opacityHot, 0.9), coldFade: o.coldFade },
  );
  outlineRegions(image, input.regions, width / input.slideWidth, {
    gap: Math.max(2, unit * 0.8),
    width: Math.max(2, unit * 0.6),
    halo: Math.max(1, unit * 0.3),
    merge: unit * o.mergeUnits,
    colour: hex(o.outline),
    haloColour: hex(o.outlineHalo),
    haloOpacity: 0.75,
  });
  const { labels, unnumbered } = labelPlan(input, o);
  const { layout, headerSvg: head, footerSvg: foot } = plan(input, o, unnumbered);
  const { left, top } = layout.image;
  const { width: canvasW, height: canvasH } = layout.canvas;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasW}" height="${canvasH}">` +
    head +
    `<g transform="translate(${left},${top})">${labelsSvg(labels, unit, o)}</g>` +
    foot +
    '</svg>';
  const png = await sharp({ create: { width: canvasW, height: canvasH, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([
      { input: image.data, raw: { width: image.width, height: image.height, channels: 3 }, left, top },
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .removeAlpha()
    .png({ compressionLevel: 6 })
    .toBuffer();
  return {
    png,
    layout,
    unnumbered,
    labels: labels.map((l) => ({
      text: l.text,
      rank: l.rank,
      x: l.x + left,
      y: l.y + top,
      width: l.width,
      height: l.height,
      anchor: { x: l.anchor.x + left, y: l.anchor.y + top },
      leader: l.leader === null ? null : { x1: l.leader.x1 + left, y1: l.leader.y1 + top, x2: l.leader.x2 + left, y2: l.leader.y2 + top },
    })),
  };
}

/** The figure as a PNG. */
export async function renderOverlay(input: OverlayInput, options: Partial<OverlayOptions> = {}): Promise<Buffer> {
  return (await overlayFigure(input, options)).png;
}
