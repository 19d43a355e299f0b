/**
 * The readout under the cursor: position on the slide (µm, or px without a scale) and the score
 * of the heatmap cell there, exact within one quantisation step (HeatmapProbe).
 */
import OpenSeadragon from 'openseadragon';
import { h } from './dom.js';
import { decimalsFor, fmtScore } from './format.js';
import type { HeatmapProbe } from './heatmap-probe.js';
import type { TiledImage, Viewer } from './viewer.js';

export interface Readout {
  setProbe(probe: HeatmapProbe | null, threshold: number | null): void;
  destroy(): void;
}

export function mountReadout(viewer: Viewer, item: TiledImage, mpp: number | null): Readout {
  const pos = h('span', { class: 'readout__pos' }, '—');
  const score = h('span', { class: 'readout__score', 'data-testid': 'readout-score' }, '');
  const el = h('div', { class: 'readout', 'data-testid': 'readout' }, pos, score);
  viewer.element.appendChild(el);
  let probe: HeatmapProbe | null = null;
  let methodThreshold: number | null = null;
  let seq = 0;
  let frame = 0;
  let last: { x: number; y: number } | null = null;

  const show = async (x: number, y: number): Promise<void> => {
    const { x: width, y: height } = item.source.dimensions;
    if (x < 0 || y < 0 || x >= width || y >= height) {
      pos.textContent = 'outside the slide';
      score.textContent = '';
      el.dataset.state = 'outside';
      return;
    }
    pos.textContent = mpp ? `x ${(x * mpp).toFixed(0)} µm · y ${(y * mpp).toFixed(0)} µm` : `x ${Math.floor(x)} px · y ${Math.floor(y)} px`;
    if (!probe || el.dataset.state === 'outside') el.dataset.state = 'slide';
    if (!probe) {
      score.textContent = '';
      return;
    }
    const mine = ++seq;
    const cell = await probe.scoreAt(x, y);
    if (mine !== seq) return;
    if (!cell) {
      score.textContent = 'outside the grid';
      el.dataset.state = 'outside';
    } else if (cell.score === null) {
      score.textContent = 'no tissue';
      el.dataset.state = 'no-tissue';
    } else {
      const digits = decimalsFor(probe.info.scale, 2);
      const hot = methodThreshold !== null && cell.score >= methodThreshold;
      score.textContent = `score ${fmtScore(cell.score, digits)}${hot ? ' · anomalous' : ''}`;
      score.dataset.score = String(cell.score);
      el.dataset.state = hot ? 'hot' : 'scored';
    }
  };

  const onMove = (e: PointerEvent): void => {
    const r = viewer.element.getBoundingClientRect();
    const p = item.viewerElementToImageCoordinates(new OpenSeadragon.Point(e.clientX - r.left, e.clientY - r.top));
    last = { x: p.x, y: p.y };
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (last) void show(last.x, last.y);
    });
  };
  const onLeave = (): void => {
    seq++;
    pos.textContent = '—';
    score.textContent = '';
    delete el.dataset.state;
  };
  viewer.element.addEventListener('pointermove', onMove);
  viewer.element.addEventListener('pointerleave', onLeave);

  return {
    setProbe(next, threshold) {
      probe = next;
      methodThreshold = threshold;
    },
    destroy() {
      viewer.element.removeEventListener('pointermove', onMove);
      viewer.element.removeEventListener('pointerleave', onLeave);
      if (frame) cancelAnimationFrame(frame);
      el.remove();
    },
  };
}
