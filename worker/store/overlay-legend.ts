/**
 * The text parts of overlay.png, as SVG for sharp to composite (libvips renders the text with
 * the system's fonts; DejaVu Sans on Debian): the header (slide, model, method), and the footer:
 * a colour bar of the score scale with ticks and the threshold marked, and a legend of what is
 * drawn. Sizes follow one unit (1/400 of the figure's long side), so the figure reads the same at
 * any size. Text widths are estimated (no font metrics here), on the generous side.
 */
import type { ColormapName } from './colormap.js';
import { colormapLut } from './colormap.js';
import { rankLabel } from './region-outline.js';

export const FONT = 'DejaVu Sans, sans-serif';
export const INK = '#15202b';
export const INK_SOFT = '#3c4854';
export const THRESHOLD_INK = '#a3101c';

/** Text for SVG: markup escaped, characters XML cannot hold (control characters in a file name) as U+FFFD. */
export const esc = (s: string): string =>
  s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Estimated width of `text` in DejaVu Sans at `size` px (a little wide, never narrow). */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (ch === ' ') em += 0.32;
    else if (/[0-9]/.test(ch)) em += 0.64;
    else if (/[.,:;'|!()[\]]/.test(ch) || ch === 'i' || ch === 'l' || ch === 'j') em += 0.36;
    else if (ch === 'm' || ch === 'w' || ch === 'M' || ch === 'W') em += 0.92;
    else if (/[A-Z]/.test(ch)) em += 0.72;
    else em += 0.62;
  }
  return em * size * (bold ? 1.12 : 1);
}

/** `text` cut with an ellipsis to fit `width`. */
export function fitText(text: string, size: number, width: number, bold = false): string {
  if (textWidth(text, size, bold) <= width) return text;
  let cut = text;
  while (cut.length > 1 && textWidth(`${cut}…`, size, bold) > width) cut = cut.slice(0, -1);
  return `${cut.trimEnd()}…`;
}

/** Greedy line breaking at `separator`s (no part is split; an overlong one is cut). */
export function wrapParts(parts: readonly string[], separator: string, size: number, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    const next = line === '' ? part : `${line}${separator}${part}`;
    if (line !== '' && textWidth(next, size) > width) {
      lines.push(line);
      line = part;
    } else line = next;
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => fitText(l, size, width));
}

/** A step of 1, 2 or 5 x 10^k giving about `count` ticks over `span`. */
export function tickStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}

export function formatTick(v: number, step: number): string {
  const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(step) + 1e-9)));
  const s = v.toFixed(digits);
  return s === '-0' || /^-0\.0*$/.test(s) ? s.slice(1) : s;
}

/** Ticks at multiples of a 1-2-5 step within [min, max], spaced so their numbers do not touch. */
export function ticks(min: number, max: number, barWidth: number, fontSize: number): { values: number[]; step: number } {
  const span = max - min;
  if (!(span > 0)) return { values: [min], step: 1 };
  for (let count = 8; count >= 1; count--) {
    const step = tickStep(span, count);
    const values: number[] = [];
    for (let k = Math.ceil(min / step - 1e-9); k * step <= max + 1e-9 * Math.abs(max || 1); k++) values.push(k * step + 0); // + 0: no -0
    const widest = Math.max(...values.map((v) => textWidth(formatTick(v, step), fontSize)));
    if (values.length <= 1 || (step / span) * barWidth >= widest * 1.6) return { values, step };
  }
  return { values: [min, max], step: span };
}

/** Three decimals for a score, fewer never: thresholds are compared with them. */
export const formatScore = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(3));

export interface ScaleInput {
  min: number | null;
  max: number | null;
  /** Infinity when the method set none. */
  threshold: number;
  scoreMethod: string;
  colormap: ColormapName;
}

/** How the heatmap looks on the slide, for the legend's swatches. */
export interface LegendLook {
  opacityHot: number;
  opacityCold: number;
  coldFade: number;
  outline: string;
  outlineHalo: string;
  tissueOutline: string;
  regions: number;
  /** Ranks of the regions not numbered on the figure (crowded out), ascending. */
  unnumbered: readonly number[];
}

export interface Footer {
  svg: string;
  height: number;
  bar: { x: number; y: number; width: number; height: number } | null;
}

/** A typical H&E pink under the legend's swatches. */
const TISSUE: readonly [number, number, number] = [214, 150, 196];

const rgb = (c: readonly number[]): string => `rgb(${c.map((v) => Math.round(v)).join(',')})`;

function lutColour(lut: Uint8Array, t: number): [number, number, number] {
  const k = Math.max(0, Math.min(255, Math.round(t * 255)));
  return [lut[k * 3] as number, lut[k * 3 + 1] as number, lut[k * 3 + 2] as number];
}

const blend = (under: readonly number[], over: readonly number[], a: number): number[] => under.map((u, i) => u * (1 - a) + (over[i] as number) * a);

/**
 * The footer at (0, top), `width` wide: bar caption, colour bar with ticks and the threshold,
 * legend. Returns its SVG, height and where the bar is.
 */
export function footer(scale: ScaleInput, look: LegendLook, width: number, top: number, unit: number): Footer {
  const pad = unit * 6;
  const text = unit * 3.3;
  const small = unit * 3;
  let y = top + unit * 4;
  let svg = '';
  if (scale.min === null || scale.max === null) {
    y += text;
    svg += `<text x="${pad}" y="${y}" font-family="${FONT}" font-size="${text}" fill="${INK_SOFT}">No tissue found: nothing was scored.</text>`;
    return { svg, height: y + unit * 5 - top, bar: null };
  }
  const { min, max, threshold } = scale;
  const lut = colormapLut(scale.colormap);
  const span = max - min;
  const bar = { x: Math.round(pad), y: 0, width: Math.round(Math.min(width - 2 * pad, unit * 200)), height: Math.round(unit * 5) };

  // Caption, then the threshold's label on its own line above its marker.
  y += text;
  const caption = `Anomaly score (${scale.scoreMethod}), ${scale.colormap} from the slide's lowest to its highest tissue score, as in the viewer`;
  svg += `<text x="${bar.x}" y="${y}" font-family="${FONT}" font-size="${text}" font-weight="bold" fill="${INK}">${esc(fitText(caption, text, width - 2 * pad, true))}</text>`;
  const at = (v: number): number => bar.x + (span > 0 ? ((v - min) / span) * bar.width : bar.width / 2);
  const hasThreshold = Number.isFinite(threshold);
  const inside = hasThreshold && threshold >= min && threshold <= max;
  y += unit * 2.2 + small;
  if (hasThreshold) {
    const label = inside
      ? `threshold ${formatScore(threshold)}: cells at or above are anomalous`
      : threshold > max
        ? `threshold ${formatScore(threshold)}: above every score, no cell is anomalous`
        : `threshold ${formatScore(threshold)}: below every score, every cell is anomalous`;
    const x = inside ? at(threshold) : threshold > max ? bar.x + bar.width : bar.x;
    const w = textWidth(label, small, true);
    const anchor = x + unit * 1.5 + w <= width - unit * 2 ? 'start' : 'end';
    const tx = anchor === 'start' ? Math.max(bar.x, x - unit * 1.5) : Math.min(x + unit * 1.5, width - unit * 2);
    svg += `<text x="${tx.toFixed(1)}" y="${y}" font-family="${FONT}" font-size="${small}" font-weight="bold" fill="${THRESHOLD_INK}" text-anchor="${anchor}">${esc(label)}</text>`;
  } else {
    svg += `<text x="${bar.x}" y="${y}" font-family="${FONT}" font-size="${small}" fill="${INK_SOFT}">No threshold: the score method set none, so every cell is drawn faint.</text>`;
  }
  bar.y = Math.round(y + unit * 2.2);

  // The bar: the ramp itself, full strength (colour -> score), with a marker at the threshold.
  const stops = Array.from({ length: 65 }, (_, i) => `<stop offset="${(i / 64).toFixed(4)}" stop-color="${rgb(lutColour(lut, i / 64))}"/>`).join('');
  svg += `<defs><linearGradient id="ramp">${stops}</linearGradient>`;
  svg += `<linearGradient id="faint">${Array.from({ length: 17 }, (_, i) => {
    const t = i / 16;
    const a = look.opacityCold * (look.coldFade > 0 ? t ** look.coldFade : 1);
    return `<stop offset="${t.toFixed(4)}" stop-color="${rgb(blend(TISSUE, lutColour(lut, hasThreshold && span > 0 ? (Math.min(threshold, max) - min) / span * t : t), a))}"/>`;
  }).join('')}</linearGradient>`;
  svg += `<linearGradient id="strong">${Array.from({ length: 9 }, (_, i) => {
    const t = i / 8;
    const lo = hasThreshold && span > 0 ? Math.max(0, Math.min(1, (threshold - min) / span)) : 0.85;
    return `<stop offset="${t.toFixed(4)}" stop-color="${rgb(blend(TISSUE, lutColour(lut, lo + (1 - lo) * t), look.opacityHot))}"/>`;
  }).join('')}</linearGradient></defs>`;
  svg += `<rect x="${bar.x}" y="${bar.y}" width="${bar.width}" height="${bar.height}" fill="url(#ramp)" stroke="${INK}" stroke-width="1"/>`;
  if (inside) {
    const x = at(threshold);
    const mw = Math.max(3, unit * 0.9);
    svg += `<rect x="${(x - mw / 2 - 1).toFixed(1)}" y="${(bar.y - unit * 1.4 - 1).toFixed(1)}" width="${(mw + 2).toFixed(1)}" height="${(bar.height + unit * 2.8 + 2).toFixed(1)}" fill="#ffffff"/>`;
    svg += `<rect x="${(x - mw / 2).toFixed(1)}" y="${(bar.y - unit * 1.4).toFixed(1)}" width="${mw.toFixed(1)}" height="${(bar.height + unit * 2.8).toFixed(1)}" fill="${INK}"/>`;
  }
  const tickTop = bar.y + bar.height;
  const { values, step } = ticks(min, max, bar.width, small);
  for (const v of values) {
    const x = at(v).toFixed(1);
    svg += `<line x1="${x}" y1="${tickTop}" x2="${x}" y2="${tickTop + unit * 1.4}" stroke="${INK}" stroke-width="${Math.max(1, unit * 0.25)}"/>`;
    svg += `<text x="${x}" y="${tickTop + unit * 1.6 + small}" font-family="${FONT}" font-size="${small}" fill="${INK_SOFT}" text-anchor="middle">${formatTick(v, step)}</text>`;
  }
  y = tickTop + unit * 1.6 + small + unit * 3;

  // Legend: swatches as things look on tissue, flowed into as many lines as the width needs.
  const sw = unit * 9;
  const sh = unit * 3.4;
  const items: { swatch: (x: number, y: number) => string; label: string; own?: boolean }[] = [
    {
      swatch: (x, y) => `<rect x="${x}" y="${y}" width="${sw}" height="${sh}" fill="url(#faint)" stroke="${INK_SOFT}" stroke-width="0.5"/>`,
      label: 'below the threshold: faint, fading out towards the lowest scores',
    },
    {
      swatch: (x, y) => `<rect x="${x}" y="${y}" width="${sw}" height="${sh}" fill="url(#strong)" stroke="${INK_SOFT}" stroke-width="0.5"/>`,
      label: 'at or above the threshold: strong, the tissue showing through',
    },
    {
      swatch: (x, y) => {
        const h = sh + unit;
        const r = unit * 1.2;
        return (
          `<rect x="${x + unit * 0.4}" y="${y - unit * 0.5}" width="${sw - unit * 0.8}" height="${h}" rx="${r}" fill="none" stroke="${look.outlineHalo}" stroke-width="${unit * 1.3}"/>` +
          `<rect x="${x + unit * 0.4}" y="${y - unit * 0.5}" width="${sw - unit * 0.8}" height="${h}" rx="${r}" fill="none" stroke="${look.outline}" stroke-width="${unit * 0.6}"/>`
        );
      },
      label: look.regions === 0 ? 'anomalous region (none on this slide)' : `anomalous region (${look.regions}; regions that touch share a ring)`,
    },
    ...(look.regions === 0
      ? []
      : [
          {
            swatch: (x: number, y: number): string => {
              const cy = y + sh / 2;
              const ph = unit * 4.4;
              const pw = unit * 5;
              const px = x + sw - pw;
              return (
                `<line x1="${x + unit * 1.2}" y1="${cy}" x2="${px}" y2="${cy}" stroke="${look.outlineHalo}" stroke-width="${unit * 1.1}" stroke-linecap="round"/>` +
                `<line x1="${x + unit * 1.2}" y1="${cy}" x2="${px}" y2="${cy}" stroke="#ffffff" stroke-width="${unit * 0.45}"/>` +
                `<circle cx="${x + unit * 1.2}" cy="${cy}" r="${unit * 0.75}" fill="#ffffff" stroke="${look.outlineHalo}" stroke-width="${unit * 0.4}"/>` +
                `<rect x="${px}" y="${cy - ph / 2}" width="${pw}" height="${ph}" rx="${ph / 2}" fill="${look.outlineHalo}" stroke="${look.outline}" stroke-width="${unit * 0.35}"/>` +
                `<text x="${px + pw / 2}" y="${cy + unit * 1.1}" font-family="${FONT}" font-size="${unit * 3}" font-weight="bold" fill="#ffffff" text-anchor="middle">1</text>`
              );
            },
            label: `its rank as in the viewer and the reports (1: highest score), on the region or led to a dot in it`,
          },
        ]),
    {
      swatch: (x, y) => `<line x1="${x}" y1="${y + sh / 2}" x2="${x + sw}" y2="${y + sh / 2}" stroke="${look.tissueOutline}" stroke-width="${Math.max(2, unit * 0.5)}"/>`,
      label: 'tissue boundary',
    },
  ];
  if (look.unnumbered.length > 0) {
    const n = look.unnumbered.length;
    items.push({
      swatch: () => '',
      label: `${n} region${n === 1 ? '' : 's'} not numbered here (rank${n === 1 ? '' : 's'} ${rankLabel(look.unnumbered, 4)}: too many or too crowded to number at this scale); the viewer's region list and the PDF report list every region`,
      own: true,
    });
  }
  const lineH = unit * 5.4;
  let x = bar.x;
  y += small;
  for (const item of items) {
    if (item.own === true) {
      // A note on its own line, in the ring's ink, without a swatch.
      y += lineH;
      svg += `<text x="${bar.x}" y="${y}" font-family="${FONT}" font-size="${small}" font-weight="bold" fill="${INK}">${esc(fitText(item.label, small, width - pad - bar.x, true))}</text>`;
      x = width;
      continue;
    }
    const w = sw + unit * 1.6 + textWidth(item.label, small) + unit * 5;
    if (x > bar.x && x + w > width - pad) {
      x = bar.x;
      y += lineH;
    }
    svg += item.swatch(x, y - sh + unit * 0.3);
    svg += `<text x="${x + sw + unit * 1.6}" y="${y}" font-family="${FONT}" font-size="${small}" fill="${INK_SOFT}">${esc(fitText(item.label, small, width - pad - x - sw - unit * 1.6))}</text>`;
    x += w;
  }
  return { svg, height: y + unit * 4 - top, bar };
}
