/**
 * The heatmap panel: show/hide (`h`), opacity, colour map with its legend, and the display
 * threshold as a slider under a histogram of the slide's cell scores (HeatmapInfo.histogram,
 * 64 bins from min to max, drawn on a square-root scale so the tail stays visible). Bars below
 * the threshold are greyed, as those cells are hidden on the slide.
 */
import { ALL_COLORMAPS, type ColormapName } from '../../../worker/store/colormap.js';
import type { HeatmapInfo } from '../../server/api-types.js';
import { h } from './dom.js';
import { decimalsFor, fmtScore } from './format.js';
import { rampCss } from './heatmap-colour.js';
import type { HeatmapLook } from './heatmap-layer.js';

export interface HeatmapControls {
  element: HTMLElement;
  /** Shows the controls for a heatmap (null: none yet, with why in `note`). */
  setHeatmap(info: HeatmapInfo | null, look: HeatmapLook, note?: string): void;
  /** Reflects a change made elsewhere (keyboard). */
  setVisible(visible: boolean): void;
}

const STEPS = 255;

export function heatmapControls(onChange: (patch: Partial<HeatmapLook>) => void): HeatmapControls {
  const toggle = h('input', { type: 'checkbox', id: 'heatmap-toggle' });
  const opacity = h('input', { type: 'range', id: 'heatmap-opacity', min: 0, max: 100, step: 1 });
  const opacityValue = h('span', { class: 'value' });
  const colormap = h('select', { id: 'heatmap-colormap' }, ALL_COLORMAPS.map((name) => h('option', { value: name }, name)));
  const legend = h('canvas', { class: 'legend', width: 256, height: 10 });
  const legendMin = h('span');
  const legendMax = h('span');
  const hist = h('canvas', { class: 'histogram', width: 256, height: 56, 'data-testid': 'histogram' });
  const threshold = h('input', { type: 'range', id: 'heatmap-threshold', min: 0, max: STEPS, step: 1, value: 0 });
  const thresholdValue = h('span', { class: 'threshold__value', 'data-testid': 'threshold-value' });
  const useMethod = h('button', { type: 'button', class: 'link-btn', id: 'threshold-method' }, 'method threshold');
  const showAll = h('button', { type: 'button', class: 'link-btn', id: 'threshold-all' }, 'show all');
  const note = h('p', { class: 'muted small' });
  const body = h('div', { class: 'heatmap-controls__body' },
    h('div', { class: 'field-row' },
      h('label', { class: 'switch', for: 'heatmap-toggle' }, toggle, h('span', null, 'Show heatmap'), h('kbd', null, 'h')),
    ),
    h('div', { class: 'field-row' }, h('label', { for: 'heatmap-opacity' }, 'Opacity'), opacity, opacityValue),
    h('div', { class: 'field-row' }, h('label', { for: 'heatmap-colormap' }, 'Colours'), colormap),
    h('div', { class: 'legend-wrap' }, legend, h('div', { class: 'legend-labels' }, legendMin, legendMax)),
    h('div', { class: 'threshold' },
      h('div', { class: 'field-row' }, h('label', { for: 'heatmap-threshold' }, 'Threshold'), thresholdValue),
      hist,
      threshold,
      h('div', { class: 'threshold__links' }, showAll, useMethod),
    ),
  );
  const element = h('section', { class: 'panel heatmap-controls', 'aria-label': 'Heatmap' }, h('h2', null, 'Heatmap'), note, body);

  let info: HeatmapInfo | null = null;
  let look: HeatmapLook | null = null;

  const scoreAtStep = (i: number): number => (info ? info.min + (i / STEPS) * (info.max - info.min) : 0);
  const stepOf = (score: number): number => (info && info.max > info.min ? Math.round(((score - info.min) / (info.max - info.min)) * STEPS) : 0);

  const drawLegend = (): void => {
    const ctx = legend.getContext('2d');
    if (!ctx || !look) return;
    for (let x = 0; x < legend.width; x++) {
      ctx.fillStyle = rampCss(look.colormap, x / (legend.width - 1));
      ctx.fillRect(x, 0, 1, legend.height);
    }
  };

  const drawHistogram = (): void => {
    const ctx = hist.getContext('2d');
    if (!ctx || !info || !look) return;
    const { width, height } = hist;
    ctx.clearRect(0, 0, width, height);
    const bins = info.histogram;
    const peak = Math.sqrt(Math.max(1, ...bins));
    const bw = width / Math.max(1, bins.length);
    const t = (look.threshold - info.min) / Math.max(1e-12, info.max - info.min);
    bins.forEach((count, i) => {
      const hgt = count > 0 ? Math.max(1, (Math.sqrt(count) / peak) * (height - 4)) : 0;
      const centre = (i + 0.5) / bins.length;
      ctx.fillStyle = centre < t ? '#3a3f46' : rampCss(look!.colormap, centre);
      ctx.fillRect(Math.floor(i * bw), height - hgt, Math.ceil(bw) - 1 || 1, hgt);
    });
    if (info.threshold !== null && info.max > info.min) {
      const x = Math.round(((info.threshold - info.min) / (info.max - info.min)) * (width - 1));
      ctx.fillStyle = '#e6e8eb';
      ctx.setLineDash([]);
      ctx.fillRect(x, 0, 1, height);
      ctx.font = '9px system-ui, sans-serif';
      ctx.textAlign = x > width - 40 ? 'right' : 'left';
      ctx.fillText('method', x > width - 40 ? x - 3 : x + 3, 9);
    }
  };

  const refresh = (): void => {
    if (!info || !look) return;
    toggle.checked = look.visible;
    opacity.value = String(Math.round(look.opacity * 100));
    opacityValue.textContent = `${Math.round(look.opacity * 100)} %`;
    colormap.value = look.colormap;
    threshold.value = String(stepOf(look.threshold));
    const digits = decimalsFor(info.scale, 2);
    thresholdValue.textContent = look.threshold <= info.min ? 'off (all cells)' : `score ≥ ${fmtScore(look.threshold, digits)}`;
    legendMin.textContent = fmtScore(info.min, digits);
    legendMax.textContent = fmtScore(info.max, digits);
    useMethod.hidden = info.threshold === null;
    if (info.threshold !== null) useMethod.textContent = `method threshold (${fmtScore(info.threshold, digits)})`;
    drawLegend();
    drawHistogram();
  };

  const change = (patch: Partial<HeatmapLook>): void => {
    if (!look) return;
    Object.assign(look, patch);
    refresh();
    onChange(patch);
  };

  toggle.addEventListener('change', () => change({ visible: toggle.checked }));
  opacity.addEventListener('input', () => change({ opacity: Number(opacity.value) / 100, visible: true }));
  colormap.addEventListener('change', () => change({ colormap: colormap.value as ColormapName }));
  threshold.addEventListener('input', () => change({ threshold: scoreAtStep(Number(threshold.value)) }));
  useMethod.addEventListener('click', () => info?.threshold != null && change({ threshold: info.threshold }));
  showAll.addEventListener('click', () => info && change({ threshold: info.min }));

  return {
    element,
    setHeatmap(next, nextLook, why) {
      info = next;
      look = { ...nextLook };
      body.hidden = !next;
      note.hidden = !why && !!next;
      note.textContent = why ?? (next ? '' : 'No heatmap yet.');
      for (const el of [toggle, opacity, colormap, threshold, useMethod, showAll]) el.disabled = !next;
      refresh();
    },
    setVisible(visible) {
      if (!look) return;
      look.visible = visible;
      refresh();
    },
  };
}
